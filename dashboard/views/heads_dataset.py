"""The Heads page's dataset section: aux1, aux2 and main over a whole labelled set, as exits, where they disagree."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import gnet
from dashboard import state
from dashboard.cache import sets
from dashboard.figures import heads as headcharts
from dashboard.figures import tables
from dashboard.figures.charts import agreement_heatmap
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, download_csv, download_json
from dashboard.views.gallery import gallery
from gnet.data.images import image_digest
from gnet.heads.early_exit import BRANCHYNET
from gnet.heads.stats import gap_margin
from gnet.net.layers import HEADS

__all__ = ["render"]

GALLERY_SIZE = 24
_ORIGIN = {
    "shipped": "Logits shipped with the bundled weights (checked against their sha256).",
    "disk cache": "Logits read from the disk cache, where an earlier run kept them under the weights' sha256.",
    "computed": "Logits computed now, and kept in the disk cache under the weights' sha256.",
}
_PERCENT = st.column_config.NumberColumn(format="percent")
_TABLE_COLUMNS = {
    "top1": st.column_config.NumberColumn("top-1", format="percent"),
    "top5": st.column_config.NumberColumn("top-5", format="percent"),
    "ece": st.column_config.NumberColumn("ECE (15 bins)", format="percent"),  # as the calibration titles give it
    "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.4f"),
    "mean_entropy": st.column_config.NumberColumn("mean entropy (nats)", format="%.4f"),
    "agrees_with_main": st.column_config.NumberColumn("agrees with main", format="percent"),
    "right_where_main_wrong": st.column_config.NumberColumn("right where main is wrong", format="percent"),
    "wrong_where_main_right": st.column_config.NumberColumn("wrong where main is right", format="percent"),
}
_EXIT_COLUMNS = {
    "accuracy": _PERCENT,
    "mean_macs": st.column_config.NumberColumn("mean multiply-adds", format="%.0f"),
    "relative_cost": st.column_config.NumberColumn("share of main's cost", format="percent"),
    "exit_aux1": st.column_config.NumberColumn("leave at aux1", format="percent"),
    "exit_aux2": st.column_config.NumberColumn("leave at aux2", format="percent"),
    "exit_main": st.column_config.NumberColumn("go on to main", format="percent"),
}


def render(sel: Selection, loaded: gnet.LoadedModel) -> None:
    st.header("Over a whole test set")
    st.caption(
        "On one image the three heads mostly agree. Over a test set the differences show: which classes an early "
        "head confuses, whether it is over-confident, and which images it gets right where main does not."
    )
    folder = st.text_input(
        "Image folder (optional)", key=Keys.HEADS_FOLDER,
        placeholder="FOLDER/<class>/<image>, class names as the weights'",
        help="Leave empty for the Fashion-MNIST test set (Fashion-MNIST weights) or the sample images (other weights).",
    ).strip() or None
    try:
        data = sets.evaluation_set(sel.weights, sel.device, folder)
        key = sets.data_key(sel.weights, sel.device, folder)
        logits = _logits(sel, folder, key)
    except gnet.GNetError as e:
        st.error(str(e))
        return
    comparison = sets.head_comparison(sel.weights, sel.device, key, logits)
    st.caption(f"**{logits.name}**, {comparison.labelled:,} with a label these weights know. {_ORIGIN[logits.origin]}")
    table = pd.DataFrame(comparison.table())
    st.dataframe(table, hide_index=True, column_config=_TABLE_COLUMNS)
    download_csv(table, "Per-head table (CSV)", "heads_over_set.csv")
    if comparison.labelled:
        _labelled(comparison, loaded)
    else:
        st.info("No image of this set has a label these weights know: accuracy, confusion and calibration need "
                "labels; agreement, confidence and the gallery below do not.")
    _distributions(comparison, table)
    _early_exits(sel, key, logits)
    _probes(sel, folder, key)
    _gallery(sel, folder, key, logits, data.classes)
    download_json(comparison.to_dict(), "Everything above (JSON)", "heads_over_set.json")


def _logits(sel: Selection, folder: str | None, key: str):
    """The heads' logits over the set, with a progress bar while they are computed (none when shipped or cached)."""
    bar = None

    def progress(done: int, all_: int) -> None:
        nonlocal bar
        if bar is None:
            bar = st.progress(0.0)
        bar.progress(done / all_, text=f"Running the three heads over {all_:,} images: {done:,} done")

    try:
        return sets.head_logits(sel.weights, sel.device, folder, key, progress=progress)
    finally:
        if bar is not None:
            bar.empty()


def _labelled(comparison, loaded) -> None:
    heads = comparison.heads
    st.subheader("Confusion matrices")
    chart(
        headcharts.confusion_matrices({h: s.confusion for h, s in heads.items()}, comparison.classes),
        "Each row is a true class; the colour is the share of its images each head puts in each column. "
        "Off-diagonal cells are the mistakes: compare where aux1 goes wrong with where main does.",
        key="heads-confusion",
    )
    chart(
        headcharts.per_class_accuracy(tables.per_class_accuracy(comparison)),
        "Accuracy per true class. The hard classes (for Fashion-MNIST: Shirt, Pullover, Coat, T-shirt/top) are "
        "hard for every head; the early heads lose most there.",
        key="heads-per-class",
    )
    st.subheader("Calibration")
    chart(
        headcharts.reliability_diagrams({h: s.reliability.to_dict() for h, s in heads.items()},
                                        {h: s.ece for h, s in heads.items()}),
        "Reliability diagrams: the images grouped into 15 bins by the head's confidence; a bar below the dashed "
        "diagonal means the head is over-confident there. ECE is the image-weighted mean gap (Guo et al. 2017).",
        key="heads-reliability",
    )


def _distributions(comparison, table: pd.DataFrame) -> None:
    heads = comparison.heads
    st.subheader("Confidence and entropy")
    chart(
        headcharts.confidence_histograms(
            {h: s.confidence_hist for h, s in heads.items()}, {h: s.entropy_hist for h, s in heads.items()},
            math.log(len(comparison.classes)),
        ),
        "How many images get each confidence and each entropy (log scale). A head whose curve sits further "
        "right on confidence and left on entropy is surer of itself, which is not the same as being right.",
        key="heads-histograms",
    )
    st.subheader("Agreement")
    left, right = st.columns(2)
    with left:
        matrix = pd.DataFrame(comparison.agreement, index=list(HEADS), columns=list(HEADS))
        chart(agreement_heatmap(matrix), f"How often two heads pick the same class over the {comparison.images:,} "
              "images.", key="heads-agreement")
    with right:
        if comparison.right_where_main_wrong is not None:
            chart(headcharts.right_wrong_bars(table),
                  "Green: images an aux head gets right and main gets wrong. Red: the reverse. The difference "
                  "between the two is the head's accuracy gap to main.", key="heads-right-wrong")


def _early_exits(sel: Selection, key: str, logits) -> None:
    st.subheader("Early exits: the auxiliary heads as a way to save compute")
    curve = sets.exit_curve(sel.weights, sel.device, key, logits)
    costs = curve.costs
    st.markdown(
        f"Stop an image at aux1 when aux1's top-1 probability is at least a threshold *t*, else at aux2 when "
        f"aux2's is, else let it go on to main. The idea is BranchyNet's ({BRANCHYNET}). **GoogLeNet's paper "
        "discards the auxiliary heads at inference**: this is an analysis of the trained heads as exits, not the "
        f"paper's method. Cost is counted, not timed: multiply-adds per {costs.input_size} px image from the cost "
        f"model, {costs.main_only / 1e6:.1f} M for main only; leaving at aux1 takes {costs.aux1_only / 1e6:.1f} M "
        f"({costs.aux1_only / costs.main_only:.0%} of main), at aux2 {costs.exit_macs['aux2'] / 1e6:.1f} M, and "
        f"going on to main after both aux heads {costs.exit_macs['main'] / 1e6:.1f} M. *aux2 only* is no threshold "
        f"of the cascade: the net cut at inception4d with aux2 as its classifier and no aux1, "
        f"{costs.aux2_only / 1e6:.1f} M ({costs.aux2_only / costs.main_only:.0%} of main)."
    )
    rows = pd.DataFrame(curve.table())
    if curve.main_only.accuracy is None:
        st.info("Without labels there is no accuracy to trade: the table gives each threshold's cost and exits.")
    else:
        ref = {name: {"accuracy": p.accuracy, "relative_cost": p.relative_cost(costs)}
               for name, p in curve.references.items()}
        chart(headcharts.early_exit_curve(rows, ref),
              "Each point is one threshold from 0.5 to 1 (hover for the exit shares). Points left of main only "
              "save compute; points as high as main save it for free.", key="heads-early-exit")
        st.markdown(tables.exit_summary(curve))
    with st.expander("Every threshold"):
        st.dataframe(rows, hide_index=True, column_config=_EXIT_COLUMNS)
        download_csv(rows, "Early exits (CSV)", "early_exits.csv")


def _probes(sel: Selection, folder: str | None, key: str) -> None:
    st.subheader("Linear probes: how much of the answer a linear layer reads at each depth")
    where = ("this folder, split 80/20 within each class" if folder else
             "Fashion-MNIST: fitted on its 60,000 training images, scored on its 10,000 test images")
    st.markdown(
        "One multinomial logistic regression per depth, on that point's output averaged over space (Alain and "
        "Bengio 2016, arXiv:1610.01644), over " + where + ". The main head *is* such a layer on inception5b, so "
        "the last probe should land near main; the auxiliary heads read inception4a and inception4d through a "
        "convolution and two dense layers, so the probe at their point says whether that extra depth bought anything."
    )
    try:
        curve = sets.stored_probe_curve(sel.weights, sel.device, folder, key)
    except sets.NotStored:
        st.info("No probe curve is stored for these weights and this set yet: computing it runs the net once over "
                "every image of both splits and fits 14 probes.")
        if not st.button("Compute the probe curve", key=Keys.HEADS_PROBES, icon=":material/play_arrow:"):
            return
        bar = st.progress(0.0, text="Recording every depth's pooled features...")
        try:
            curve = sets.probe_curve(sel.weights, sel.device, folder, key,
                                     progress=lambda done: bar.progress(min(done, 1.0), text=_probe_step(done)))
        except gnet.GNetError as e:
            st.error(str(e))
            return
        finally:
            bar.empty()
    except gnet.GNetError as e:
        st.error(str(e))
        return
    found = curve.to_dict()
    chart(headcharts.probe_curve(found), _probe_reading(found), key="heads-probes")
    download_json(found, "Linear probes (JSON)", "linear_probes.json")


def _probe_step(done: float) -> str:
    return "Recording every depth's pooled features..." if done < 0.9 else "Fitting one probe per depth..."


def _probe_reading(curve: dict) -> str:
    """What to look for, in numbers: where the probe rises fastest, and each aux head against the probe at its point."""
    probes = curve["probes"]
    steps = [(b["accuracy"] - a["accuracy"], a["point"], b["point"]) for a, b in zip(probes, probes[1:])]
    gain, low, high = max(steps)
    text = f"The probe rises fastest from {low} to {high} (+{gain:.1%}). "
    by_point = {p["point"]: p for p in probes}
    readings, margins = [], []
    for head in ("aux1", "aux2", "main"):
        if head in curve["heads"]:
            found = curve["heads"][head]
            at = by_point[found["point"]]
            mine, probe, n = found["accuracy"], at["accuracy"], at["test_images"]
            # Below it, a gap of a few tenths of a point (0.33 on 10,000 images once read "trails") is chance.
            noise = gap_margin(mine, probe, n)
            diff = mine - probe
            verdict = "beats" if diff > noise else "trails" if diff < -noise else "matches"
            readings.append(f"{head} {verdict} the probe at {found['point']} ({mine:.2%} against {probe:.2%})")
            margins.append((f"±{noise * 100:.1f}", n))
    if not readings:
        return text.strip()
    # The margin once for all heads (the three used to repeat the same "within the ±0.7 points ..." clause).
    spans = sorted({m for m, _ in margins}, key=lambda m: float(m[1:]))
    counts = sorted({n for _, n in margins})
    span = spans[0] if len(spans) == 1 else f"{spans[0]} to {spans[-1]}"
    images = " or ".join(f"{n:,}" for n in counts)
    return (f"{text}{'; '.join(readings)}. A gap counts only beyond two standard errors ({span} points on "
            f"{images} test images): closer than that, it is chance.")


def _gallery(sel: Selection, folder: str | None, key: str, logits, classes: list[str]) -> None:
    st.subheader("Where an auxiliary head and main disagree")
    found = sets.gallery(sel.weights, sel.device, key, logits, GALLERY_SIZE)
    if not found:
        st.info("aux1 and aux2 agree with main on every image of this set.")
        return
    st.caption(
        f"The {len(found)} images where aux1 or aux2 most disagrees with main, by KL(main || aux), each with every "
        "head's top-3. **Click one** to make it the current image of every page."
    )
    pngs = sets.thumbnails(sel.weights, sel.device, folder, key, tuple(d.index for d in found))
    items = [tables.gallery_item(d, classes, png) for d, png in zip(found, pngs)]

    def pick() -> None:
        index = int(st.session_state[Keys.HEADS_GALLERY].picked)
        data = sets.evaluation_set(sel.weights, sel.device, folder)
        image = data.picture(index)
        label = int(data.labels[index])
        state.pick_image(state.PickedImage(
            name=f"{data.name.split(' (')[0]} #{index}", image=image, digest=image_digest(image),
            label=data.classes[label] if label >= 0 else None,
        ))

    gallery(items, key=Keys.HEADS_GALLERY, on_pick=pick)
