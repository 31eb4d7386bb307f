"""Channels: what one channel looks for, what knocking branches out does to the heads, what each branch is worth."""

from __future__ import annotations

import streamlit as st

import gnet
from dashboard import url
from dashboard.cache import channels, cost
from dashboard.figures import channels as channel_charts
from dashboard.figures import charts, tables
from dashboard.state import Keys, Selection, open_channel
from dashboard.views import circuits
from dashboard.views.common import chart, download_csv, need_analysis, untrained_warning, with_progress
from gnet.inspect.features import Visualization
from gnet.net.layers import BRANCHES, HEADS, INCEPTION_MODULES, ChannelTarget, branch_channels, parse_channel

__all__ = ["render"]

_STEPS = (32, 64, 128, 256, 512)
_FASHION, _FOLDER = "Default test set", "Image folder"
_SIZES = (500, 1000, 2000, 5000, 10000)  # Fashion-MNIST images; 10,000 is the whole test set
_RANKINGS = {"mean": "highest mean activation", "max": "highest peak activation"}


def render(sel: Selection) -> None:
    st.title("Channels")
    st.caption(
        "What one channel of an Inception branch looks for: an image optimized to excite it (feature visualization, "
        "Olah et al., Distill 2017), the dataset images that excite it most, and where it fires on your image. "
        "Then how it is built from the module below and what it feeds (circuits), the families of its module's "
        "channels, and what the heads lose when branches are knocked out (zeroed)."
    )
    loaded, result = need_analysis(sel)
    target = _choose_channel()
    folder, limit = _data_choice()
    st.subheader(f"What {target.name} looks for")
    left, middle, right = st.columns(3)
    with middle:
        best = _examples(sel, target, folder, limit)
    with left:
        _visualization(sel, target, best)
    with right:
        activation = result.modules[target.module].branches[target.branch].activation[target.channel].numpy()
        chart(
            charts.overlay(result.image, activation, f"on {sel.image_name or 'your image'}", height=360),
            f"The channel's map on the current image (mean {activation.mean():.3g}, peak {activation.max():.3g}), "
            "stretched over it: where in your image it finds what it looks for.",
            key="channel-overlay",
        )
    circuits.render(sel, target, folder, limit)
    st.subheader(f"Knock out branches of {target.module}")
    untrained_warning(loaded)
    _knockouts(sel, loaded, target.module)
    st.subheader("What each branch is worth")
    _importance(sel, loaded, folder, limit)
    st.subheader("What each head takes a class to be")
    _class_visualizations(sel, loaded, result.heads["main"].top[0].index)


# ---------------------------------------------------------------- choosing


def _choose_channel() -> ChannelTarget:
    """The channel to show, from the selects (their values shared through the URL) or typed."""
    a, b, c, d = st.columns([2, 1, 1, 2])
    with a:
        url.restore(url.MODULE, Keys.CHANNEL_MODULE, INCEPTION_MODULES[0], INCEPTION_MODULES.__contains__,
                    what="module")
        module = st.selectbox("Module", INCEPTION_MODULES, key=Keys.CHANNEL_MODULE)
        url.publish(url.MODULE, module)
    with b:
        url.restore(url.BRANCH, Keys.CHANNEL_BRANCH, "1x1", BRANCHES.__contains__, what="branch")
        branch = st.selectbox("Branch", list(BRANCHES), key=Keys.CHANNEL_BRANCH)
        url.publish(url.BRANCH, branch)
    with c:
        width = branch_channels(module, branch)
        key = f"{Keys.CHANNEL_INDEX}-{module}-{branch}"
        url.restore(url.CHANNEL, key, 0, lambda i: 0 <= i < width, parse=int,
                    what=f"channel of {module}.{branch} (0 to {width - 1})")
        channel = st.selectbox("Channel", range(width), key=key)
        url.publish(url.CHANNEL, channel)
    d.text_input("Or type a channel", key=Keys.CHANNEL_JUMP, on_change=_jump, placeholder="inception4c.5x5:12")
    error = st.session_state.get(Keys.CHANNEL_JUMP_ERROR)
    if error:
        st.error(error)
    return ChannelTarget(module, branch, int(channel))


def _jump() -> None:
    """The typed channel becomes the chosen one; a mistake leaves the choice and keeps its sentence to show."""
    try:
        target = parse_channel(st.session_state[Keys.CHANNEL_JUMP])
        if target.channel is None:
            raise gnet.TargetError(f"{target.name} is a whole branch: name one of its channels, e.g. {target.name}:0.")
    except gnet.TargetError as e:
        st.session_state[Keys.CHANNEL_JUMP_ERROR] = str(e)
        return
    st.session_state[Keys.CHANNEL_JUMP_ERROR] = None
    open_channel(target.module, target.branch, target.channel)


def _data_choice() -> tuple[str, int | None]:
    """(image folder or "" for Fashion-MNIST, number of images or None for all) for examples and importance."""
    with st.expander("Dataset for the examples and the branch importance"):
        st.caption(
            "The default set is the 10,000 Fashion-MNIST test images for Fashion-MNIST weights (the bundled weights "
            "ship both over it) and the sample images for other weights. For other weights, or another set, they "
            "are computed here in one pass (with a progress bar) and kept on disk."
        )
        source = st.radio("Images", (_FASHION, _FOLDER), horizontal=True, key=Keys.CHANNEL_DATA)
        if source == _FOLDER:
            folder = st.text_input("Folder (root/<class>/<image>)", key=Keys.CHANNEL_FOLDER).strip()
            if folder:
                return folder, None
            st.info("Type the folder's path; until then the default test set is used.")
            return "", None
        size = st.select_slider("Test images", _SIZES, value=_SIZES[-1], key=Keys.CHANNEL_IMAGES)
        return "", None if size == _SIZES[-1] else int(size)


# ---------------------------------------------------------------- one channel


def _visualize(sel: Selection, targets: list[str], steps: int, run: bool) -> list[Visualization | None]:
    """The kept visualizations of ``targets``; the missing ones computed, with a progress bar, when ``run`` is set."""
    found = []
    for target in targets:
        item = channels.visualization(sel.weights, sel.device, target, steps, compute=False)
        if item is None and run:
            item = with_progress(
                f"Optimizing an image for {target}...",
                lambda progress, t=target: channels.visualization(
                    sel.weights, sel.device, t, steps, compute=True, progress=progress
                ),
            )
        found.append(item)
    return found


def _visualization(sel: Selection, target: ChannelTarget, best: float | None) -> None:
    """The channel's visualization, once computed; ``best``: its best dataset image's mean activation, if known."""
    steps = st.select_slider("Optimization steps", _STEPS, value=256, key=Keys.CHANNEL_STEPS)
    run = st.button("Visualize", type="primary", key=Keys.CHANNEL_VISUALIZE, icon=":material/auto_awesome:")
    (found,) = _visualize(sel, [target.name], int(steps), run)
    if found is None:
        st.info(
            f"Press **Visualize** to optimize an image for {target.name}: {steps} Adam steps on an image held "
            "as its Fourier spectrum, randomly jittered, scaled and rotated at each step. Results are kept for "
            "every session."
        )
        return
    against = "" if best is None else f", against {best:.3g} on its best dataset image"
    picture = channel_charts.picture_grid([found.image], [f"{target.name}, {found.steps} steps"], columns=1,
                                          row_height=330)
    chart(
        picture,
        f"The image that drives the channel's mean activation to {found.activation:.3g}{against} "
        f"({found.seconds:.0f} s). Look for a repeated motif: an edge, a stripe, a texture or a garment part.",
        key="channel-visualization",
    )


def _examples(sel: Selection, target: ChannelTarget, folder: str, limit: int | None) -> float | None:
    """The channel's nine best images; returns the best one's mean activation (None when there is no index)."""
    try:
        index = channels.examples(sel.weights, sel.device, folder, limit, compute=False)
        if index is None:
            st.info("No dataset-example index for these weights and images yet: one pass over them builds it.")
            if not st.button("Build the index", key=Keys.CHANNEL_BUILD_INDEX, icon=":material/search:"):
                return None
            index = with_progress(
                "Running the images through the net...",
                lambda progress: channels.examples(
                    sel.weights, sel.device, folder, limit, compute=True, progress=progress
                ),
            )
        by = st.radio("Rank by", list(_RANKINGS), format_func=_RANKINGS.get, horizontal=True, key=Keys.CHANNEL_RANKING)
        examples = index.examples(target, by)
        pictures = channels.example_pictures(sel.weights, sel.device, folder, limit, tuple(e.index for e in examples))
    except gnet.DatasetError as e:
        (st.error if folder else st.warning)(str(e))
        return None
    size = pictures[0][0].shape[0]
    chart(
        channel_charts.picture_grid(
            [p for p, _ in pictures],
            [f"#{e.index} {label}: {e.value:.2f}" for e, (_, label) in zip(examples, pictures)],
            [e.box(size) for e in examples], row_height=120,
        ),
        f"The {len(examples)} images of {index.data} with the {_RANKINGS[by]}, as the net sees "
        "them; the red box is the map cell where the channel peaks.",
        key="channel-examples",
    )
    return index.examples(target, "mean")[0].value


# ---------------------------------------------------------------- knock-outs


def _knockouts(sel: Selection, loaded: gnet.LoadedModel, module: str) -> None:
    columns = st.columns([1, 1, 1, 1, 3])
    off = [
        branch for branch, column in zip(BRANCHES, columns)
        if column.toggle(f"{branch} off", key=f"{Keys.KNOCKOUT_BRANCH}-{module}-{branch}")
    ]
    options = [f"{b}:{c}" for b in BRANCHES if b not in off for c in range(branch_channels(module, b))]
    picked = columns[4].multiselect(
        "Single channels off", options, key=f"{Keys.KNOCKOUT_CHANNELS}-{module}", placeholder="e.g. 5x5:12",
    )
    knockouts = tuple([f"{module}.{b}" for b in off] + [f"{module}.{c}" for c in picked])
    intact = channels.ablation(sel.weights, sel.device, sel.digest, (), sel.image)
    knocked = channels.ablation(sel.weights, sel.device, sel.digest, knockouts, sel.image)
    if not knockouts:
        st.info(f"Switch a branch of {module} off, or pick single channels: the heads below then change.")
    elif len(off) == len(BRANCHES):
        st.warning(f"All four branches are off: {module} outputs only zeros, so the layers after it see nothing of "
                   "the image, and only the heads before it still can.")
    chart(
        channel_charts.knockout_bars(tables.knockout_top(intact, knocked), loaded.card.untrained_heads),
        "Grey: each head's probabilities with the intact net; coloured: with the knock-outs. A head that reads "
        f"nothing after {module} (aux1 reads up to inception4a, aux2 up to inception4d) cannot change.",
        key="knockout-bars",
    )
    st.dataframe(
        tables.knockout_changes(intact, knocked), hide_index=True,
        column_config={
            "top1_intact": st.column_config.TextColumn("top-1 intact"),
            "top1_knocked_out": st.column_config.TextColumn("top-1 knocked out"),
            "prob_before": st.column_config.NumberColumn("intact top-1, before", format="percent"),
            "prob_after": st.column_config.NumberColumn("intact top-1, after", format="percent"),
            "total_variation": st.column_config.NumberColumn("distribution moved (TV)", format="%.3f"),
        },
    )


def _importance(sel: Selection, loaded: gnet.LoadedModel, folder: str, limit: int | None) -> None:
    try:
        result = channels.branch_importance(sel.weights, sel.device, folder, limit, compute=False)
        if result is None:
            st.info("Branch importance knocks out each of the 36 branches over a labelled set. Each batch fans out "
                    "into its 36 knocked-out copies at each module, about 12 plain passes of work.")
            if not st.button("Compute branch importance", key=Keys.IMPORTANCE_RUN, icon=":material/play_arrow:"):
                return
            result = with_progress(
                "Knocking out branches...",
                lambda progress: channels.branch_importance(
                    sel.weights, sel.device, folder, limit, compute=True, progress=progress
                ),
            )
    except gnet.DatasetError as e:
        (st.error if folder else st.warning)(str(e))
        return
    grid = tables.importance_grid(result.to_frame())
    worst = grid[grid["head"] == "main"].sort_values("drop_pp", ascending=False).iloc[0]
    intact = ", ".join(f"{h} {a:.1%}" for h, a in result.intact.items())
    chart(
        channel_charts.importance_heatmaps(grid),
        f"Points of accuracy each head loses on {result.data} when that one branch is zeroed (intact: {intact}). "
        f"Red cells are branches a head cannot do without (for main, most of all {worst['module']}.{worst['branch']}: "
        f"{worst['drop_pp']:.1f} points); blue ones it is better off without. Compare the '5x5' column with the "
        "3x3 one, and early modules with late ones. Blank: modules after the head's attachment point.",
        key="importance-heatmaps",
    )
    head = st.radio("Head", HEADS, horizontal=True, key=Keys.IMPORTANCE_HEAD)
    branch_cost = tables.branch_cost(cost.cost_table(sel.weights, sel.device, loaded.card.input_size))
    chart(
        channel_charts.importance_vs_cost(tables.importance_vs_cost(grid, branch_cost, head), head),
        f"Each branch's cost (FLOPs at {loaded.card.input_size} px) against what {head} loses without it. "
        "Branches high and to the left are bargains; low and to the right, the net pays a lot for little.",
        key="importance-cost",
    )
    st.page_link("routes/cost.py", label="Every branch's FLOPs, layer by layer, on the Cost page",
                 icon=":material/calculate:")
    download_csv(result.to_frame(), "Branch importance (CSV)", "branch_importance.csv")


def _class_visualizations(sel: Selection, loaded: gnet.LoadedModel, start: int) -> None:
    classes = loaded.classes
    left, right = st.columns([2, 3])
    index = left.selectbox("Class", range(len(classes)), index=start, format_func=classes.__getitem__,
                           key=Keys.CLASS_VIS_CLASS, help="Starts on the main head's top-1 class for your image.")
    steps = int(st.session_state.get(Keys.CHANNEL_STEPS, 256))
    right.caption(f"The image each head's {classes[index]!r} logit is highest on, {steps} steps each (the steps "
                  "slider above). Aux1 sees only what inception4a computes, aux2 what inception4d does.")
    run = right.button(f"Visualize {classes[index]} for main, aux1 and aux2", key=Keys.CLASS_VIS_RUN,
                       icon=":material/auto_awesome:")
    found = _visualize(sel, [f"{h}:{index}" for h in HEADS], steps, run)
    if any(item is None for item in found):
        st.info("Press the button to optimize one image per head for this class.")
        return
    titles = [f"{h}{' (untrained)' if h in loaded.card.untrained_heads else ''}: logit {v.activation:.3g}"
              for h, v in zip(HEADS, found)]
    chart(
        channel_charts.picture_grid([v.image for v in found], titles, row_height=300),
        "What each head takes this class to be. Where the pictures differ, the heads rely on different evidence.",
        key="class-visualizations",
    )
