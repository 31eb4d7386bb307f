"""The Channels page's circuits: what builds the channel, what it feeds, its diverse images, its module's families.

Drawn by :mod:`dashboard.views.channels` under the channel's own pictures; the computations are
:mod:`gnet.inspect.circuits` and :func:`gnet.inspect.features.visualize_many`, cached for every
session by :mod:`dashboard.cache.circuits`.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

import gnet
from dashboard.cache import channels
from dashboard.cache import circuits as cache
from dashboard.figures import channels as channel_charts
from dashboard.figures import circuits as figures
from dashboard.state import Keys, Selection, open_channel
from dashboard.views.common import chart, download_csv, with_progress
from gnet.net.layers import ChannelTarget, parse_channel

__all__ = ["render"]

_KS = (4, 6, 8)
_WEIGHTS, _IMAGE = "weights", "image"
_RANKS = {_WEIGHTS: "the expanded weights (what exists)", _IMAGE: "what your image uses (integrated gradients)"}
_DIVERSE = 4
_THUMBNAIL_STEPS = 128


def render(sel: Selection, target: ChannelTarget, folder: str, limit: int | None) -> None:
    st.subheader(f"How {target.name} is built, and what it feeds")
    st.caption(
        "As in the Distill Circuits thread (Olah et al. 2020): a branch reads the module below's output, and "
        "ignoring the ReLUs it is linear, so each channel below connects to this one through one small kernel, "
        "the expanded weight: the 1x1 reduce times the 3x3 or '5x5' convolution, batch norm's scale folded in. "
        "Red excites, blue inhibits. Approximations: ReLUs taken as identity, the pool branch's max-pool as an "
        "average pool, the max-pool between stages as identity."
    )
    left, right = st.columns([1, 2])
    k = int(left.select_slider("Channels each way", _KS, value=_KS[1], key=Keys.CIRCUIT_K))
    rank = right.radio("Rank the channels below by", list(_RANKS), format_func=_RANKS.get, horizontal=True,
                       key=Keys.CIRCUIT_RANK)
    _strip(sel, target, "upstream", k, rank)
    _strip(sel, target, "downstream", k, _WEIGHTS)
    _diverse(sel, target)
    _families(sel, target.module, folder, limit)


def _strip(sel: Selection, target: ChannelTarget, direction: str, k: int, rank: str) -> None:
    built = direction == "upstream"
    try:
        if built and rank == _IMAGE:
            found = cache.contributions(sel.weights, sel.device, sel.digest, target.name, k, sel.image)
        else:
            found = cache.circuit(sel.weights, sel.device, target.name, direction, k)
    except gnet.TargetError as e:
        # The stem below inception3a and the classifier above inception5b are where circuits end, not a mistake.
        st.markdown(f"**{'Built from' if built else 'Feeds'}**")
        st.info(str(e))
        return
    st.markdown(f"**{'Built from' if built else 'Feeds'}: channels of {found.other}**")
    if found.data:
        d = found.data
        st.caption(
            f"On your image {target.name} averages {d['activation']:.3g}, and {d['baseline']:.3g} when "
            f"{found.other} outputs only zeros. Integrated gradients split the difference, "
            f"{d['sum_of_contributions']:+.3g}, among {found.other}'s channels (integration error {d['delta']:.1g}); "
            "the kernels are still the expanded weights, so what exists and what is used sit side by side."
        )
    thumbs = cache.thumbnails(sel.weights, sel.device, tuple(found.channels), _THUMBNAIL_STEPS, compute=False)
    for sign, connections in (("excite", found.excite), ("inhibit", found.inhibit)):
        if not connections:
            st.caption(f"No channel of {found.other} {sign}s it.")
            continue
        offset = 0 if sign == "excite" else len(found.excite)
        pictures = [None] * len(connections) if thumbs is None else [v.image for v in thumbs[offset:]]
        value = (lambda c: c.contribution) if found.data else (lambda c: c.weight)
        titles = [f"{c.channel.split('.', 1)[1]}<br>{value(c):+.3f}" for c in connections]
        verb = "excite" if sign == "excite" else "inhibit"
        chart(
            figures.connection_strip(titles, [c.kernel for c in connections], pictures),
            (f"The {len(connections)} channels of {found.other} that {verb} {target.name} most"
             if built else f"The {len(connections)} channels of {found.other} that {target.name} {verb}s most")
            + f" ({'contribution on your image' if found.data else 'summed expanded weight'} under each name).",
            key=f"circuit-{direction}-{sign}",
        )
        columns = st.columns(len(connections))
        for i, (column, c) in enumerate(zip(columns, connections)):
            column.button(c.channel.split(".", 1)[1], key=f"{Keys.CIRCUIT_OPEN}-{direction}-{sign}-{i}",
                          on_click=_open, args=(c.channel,), help=f"Make {c.channel} the current channel",
                          width="stretch")
    if thumbs is None and st.button(
        f"Visualize these {len(found.channels)} channels", key=f"{Keys.CIRCUIT_THUMBNAILS}-{direction}",
        icon=":material/auto_awesome:", help=f"One batched optimization, {_THUMBNAIL_STEPS} steps, for all of them",
    ):
        with_progress(
            f"Optimizing {len(found.channels)} images at once...",
            lambda progress: cache.thumbnails(sel.weights, sel.device, tuple(found.channels), _THUMBNAIL_STEPS,
                                              compute=True, progress=progress),
        )
        st.rerun()


def _open(channel: str) -> None:
    target = parse_channel(channel)
    open_channel(target.module, target.branch, int(target.channel))


def _diverse(sel: Selection, target: ChannelTarget) -> None:
    st.markdown(f"**{_DIVERSE} different images for {target.name}**")
    steps = int(st.session_state.get(Keys.CHANNEL_STEPS, 256))
    found = cache.diverse(sel.weights, sel.device, target.name, steps, _DIVERSE, compute=False)
    if found is None:
        st.caption(
            f"A channel often responds to several things (it is polysemantic); one image shows only one. "
            f"{_DIVERSE} images optimized together, penalized for looking alike to the net (similar Gram matrices "
            "at the channel's module: the diversity objective of Olah et al. 2017), show more of them."
        )
        if st.button(f"Visualize {_DIVERSE} diverse images", key=Keys.DIVERSE_RUN, icon=":material/auto_awesome:"):
            found = with_progress(
                f"Optimizing {_DIVERSE} images of {target.name}...",
                lambda progress: cache.diverse(sel.weights, sel.device, target.name, steps, _DIVERSE,
                                               compute=True, progress=progress),
            )
        else:
            return
    chart(
        channel_charts.picture_grid([v.image for v in found], [f"activation {v.activation:.3g}" for v in found],
                                    columns=_DIVERSE, row_height=220),
        f"{steps} steps each. If the four show different motifs at similar activations, the channel answers to "
        "more than one thing.",
        key="channel-diverse",
    )


def _families(sel: Selection, module: str, folder: str, limit: int | None) -> None:
    st.subheader(f"Families of {module}'s channels")
    st.caption(
        "Branch specialization (Voss et al. 2021): in Lucid's InceptionV1, all 9 black-and-white-vs-colour units "
        "of mixed3a sit in its 5x5 branch. Those findings were made on other weights (ImageNet, Lucid's); here the "
        "channels of this module, on these weights, are grouped by what excites them (k-means on each channel's "
        "activations over the images), and each family's spread over the branches is set against chance."
    )
    try:
        found = cache.families(sel.weights, sel.device, module, folder, limit, compute=False)
        if found is None:
            if not st.button(f"Find the families of {module}", key=Keys.FAMILIES_RUN, icon=":material/hub:"):
                return
            found = with_progress(
                f"Profiling {module}'s channels...",
                lambda progress: cache.families(sel.weights, sel.device, module, folder, limit, compute=True,
                                                progress=progress),
            )
        rows = found.to_rows()
        best = {f: found.examples[f][:6].tolist() for f in range(found.size)}
        everyone = tuple(sorted({i for indices in best.values() for i in indices}))
        pictures = dict(zip(everyone, channels.example_pictures(sel.weights, sel.device, folder, limit, everyone)))
    except gnet.DatasetError as e:
        (st.error if folder else st.warning)(str(e))
        return
    labels = {f: ", ".join(f"{name} x{n}" if n > 1 else name
                           for name, n in Counter(pictures[i][1] for i in indices).most_common(3))
              for f, indices in best.items()}
    gathered = found.gathered()
    verdict = (
        "Gathered in one branch beyond chance (hypergeometric test, Bonferroni-corrected, p < 0.05): "
        + "; ".join(f"family {f} ({labels[f]}) in {b}" for f, b in gathered) + "."
        if gathered else "No family sits in one branch more than chance predicts (p < 0.05, corrected)."
    )
    chart(
        figures.family_heatmap(rows),
        f"Channels of each family in each branch, coloured by how many times what chance predicts (the family's "
        f"size times the branch's share of {module}). {verdict}",
        key="families-heatmap",
    )
    st.dataframe(figures.family_frame(rows, labels), hide_index=True,
                 column_config={"p": st.column_config.NumberColumn("p (corrected)", format="%.3g")})
    family = st.selectbox("Show a family", range(found.size), key=Keys.FAMILIES_SHOWN,
                          format_func=lambda f: f"family {f}: {labels[f]}")
    shown = best[family]
    chart(
        channel_charts.picture_grid([pictures[i][0] for i in shown], [f"#{i} {pictures[i][1]}" for i in shown],
                                    columns=6, row_height=140),
        f"The images of {found.data} that family {family}'s channels respond to most. Its members: "
        + ", ".join(name.split(".", 1)[1] for name in found.members(family)) + ".",
        key="families-examples",
    )
    download_csv(figures.family_frame(rows, labels), "Families (CSV)", f"{module}_families.csv")
