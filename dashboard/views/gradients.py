"""Gradients: do GoogLeNet's auxiliary classifiers, and batch norm, keep gradient alive in the early layers?

Four parts: the gradient norm of every layer against depth at initialisation (recorded on
Fashion-MNIST test images, or computed live on the sidebar's image), the with/without-aux
ratio per layer, the recorded training runs (layer x step heatmap, loss curves per head) and
a short training run the user starts, watches and can stop.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import streamlit as st

import gnet
from dashboard import live
from dashboard.cache import gradients, models
from dashboard.figures import charts
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, download_csv
from gnet.inspect.gradients import COLUMNS, LOSSES, VARIANT_COLUMNS, aux_ratio
from gnet.net.layers import HEADS
from gnet.net.losses import AUX_WEIGHT
from gnet.net.model import INIT_SCHEMES
from gnet.train.runs import RecordedRuns

__all__ = ["render"]

_RECORDED, _LIVE = "recorded", "live"
_SOURCES = {_RECORDED: "8 Fashion-MNIST test images (recorded)", _LIVE: "the sidebar's image (computed live)"}
_QUANTITIES = {"weight": "weight gradient ||dL/dW||", "activation": "activation gradient ||dL/dY||"}
_VARIANTS = {"no_bn": "fresh, no batch norm (as the paper)", "bn": "fresh, with batch norm", "loaded": "the loaded model"}
_LOSS_NAMES = {
    "main": "main: without aux",
    "aux1": "aux1 alone",
    "aux2": "aux2 alone",
    "combined": f"combined: main + {AUX_WEIGHT} x (aux1 + aux2)",
}
_INIT_NAMES = {"trunc_normal": "N(0, 0.01)", "xavier": "Xavier", "kaiming": "Kaiming", "loaded": "trained"}

_INTRO = f"""
GoogLeNet is 22 layers deep and predates batch normalization. Its authors worried about the
vanishing gradient problem: too little gradient would reach the early layers. So they attached two
**auxiliary classifiers** to the middle of the network (on inception4a and inception4d) and trained
on **main + {AUX_WEIGHT} x (aux1 + aux2)**,
to strengthen the gradient signal reaching the lower layers and to add some regularization
(Szegedy et al. 2014, arXiv:1409.4842, section 5); the auxiliary heads are dropped at inference.
A few months later **batch normalization** (Ioffe & Szegedy 2015, arXiv:1502.03167) renormalised
every layer's activations, which keeps the gradient at a usable scale through any depth and made
such crutches largely unnecessary; torchvision's GoogLeNet has batch norm after every convolution.

Below, every convolution and linear layer's gradient norm is measured for the main loss alone and
for the loss with the auxiliary terms, on nets with and without batch norm: first at initialisation,
then over a few hundred steps of training.
"""


def render(sel: Selection) -> None:
    st.title("Gradients")
    st.markdown(_INTRO)
    runs = _recorded_runs()
    _at_initialisation(sel, runs)
    if runs is not None:
        _recorded_training(runs)
    _live_training()


def _recorded_runs() -> RecordedRuns | None:
    try:
        return gradients.recorded_runs()
    except gnet.GNetError as e:
        st.error(str(e))
        return None


# ---------------------------------------------------------------- at initialisation


def _with_series(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the label a chart's legend shows for each (variant, init)."""
    bn = frame["batch_norm"].map({True: "BN", False: "no BN"})
    label = bn + " · " + frame["init"].map(_INIT_NAMES).fillna(frame["init"])
    return frame.assign(series=label.where(frame["variant"] != "loaded", "loaded model"))


def _pick(frame: pd.DataFrame, variants: list[str], inits: list[str]) -> pd.DataFrame:
    fresh = frame["variant"].isin(variants) & frame["init"].isin(inits)
    loaded = (frame["variant"] == "loaded") & ("loaded" in variants)
    return frame[fresh | loaded]


def _at_initialisation(sel: Selection, runs: RecordedRuns | None) -> None:
    st.header("At initialisation: gradient norm against depth")
    source = st.radio(
        "Input", list(_SOURCES), format_func=_SOURCES.get, horizontal=True, key=Keys.GRADIENT_SOURCE,
        help="Recorded: drawn instantly from assets/runs/compare_variants.csv. Live: one forward and three "
        "backward passes per net on the image chosen in the sidebar, computed once per image and weights.",
    )
    a, b, c = st.columns([3, 3, 2])
    losses = a.multiselect(
        "Loss", LOSSES, default=["main", "combined"], format_func=_LOSS_NAMES.get, key=Keys.GRADIENT_LOSSES
    )
    variants = b.multiselect(
        "Network", list(_VARIANTS), default=["no_bn", "bn"], format_func=_VARIANTS.get, key=Keys.GRADIENT_VARIANTS,
        help="Fresh nets with the paper's real 5x5 kernels: without batch norm (the paper's net, with LRN) or "
        "with batch norm after every convolution (torchvision's layout). The loaded model (sidebar) is measured "
        "on the sidebar's image only.",
    )
    inits = c.multiselect(
        "Initialisation", INIT_SCHEMES, default=["trunc_normal"], format_func=_INIT_NAMES.get, key=Keys.GRADIENT_INITS,
        help="N(0, 0.01): torchvision's GoogLeNet init (a normal of std 0.01, whatever the layer's width); "
        "Xavier (uniform): the paper's Caffe init; Kaiming (normal, fan-in): He et al. 2015, scaled for ReLU.",
    )
    d, e = st.columns([3, 5])
    quantity = d.radio(
        "Gradient of", list(_QUANTITIES), format_func=_QUANTITIES.get, horizontal=True, key=Keys.GRADIENT_QUANTITY
    )
    aux_layers = e.toggle("Show the auxiliary heads' own layers", key=Keys.GRADIENT_AUX_LAYERS)
    if source == _RECORDED:
        if runs is None:
            return
        frame = runs.comparison
        st.caption(
            "Input, as assets/runs/README.md records it: the first 8 Fashion-MNIST test images at 64x64 with "
            "their true labels; nets in training mode (batch statistics, dropout with seed 0), seed 0 for the "
            "weights; both variants with the paper's 5x5 kernel."
        )
        if "loaded" in variants:
            st.info("The loaded model is measured on the sidebar's image only: choose that input to see it.")
    else:
        frame = _live_frame(sel, variants, inits)
        if frame is None:
            return
    _depth_and_ratio(_with_series(_pick(frame, variants, inits)), losses, quantity, aux_layers, source)
    _findings(_with_series(frame))


def _live_frame(sel: Selection, variants: list[str], inits: list[str]) -> pd.DataFrame | None:
    """compare_variants on the sidebar's image for the chosen networks (each cached), or None with why not."""
    if sel.weights_error or sel.image_error:
        st.error(sel.weights_error or sel.image_error)
        return None
    if sel.image is None:
        st.info("Choose an image in the sidebar: a sample, an upload or a camera photo.")
        return None
    try:
        loaded = models.model(*sel.model_key)
    except gnet.GNetError as e:
        st.error(str(e))
        return None
    true_label = sel.true_label(loaded.classes)
    target = loaded.classes.index(true_label) if true_label else None
    wanted = (["loaded"] if "loaded" in variants else []) + (inits if {"no_bn", "bn"} & set(variants) else [])
    if not wanted:
        return None
    frames = [gradients.live_comparison(sel.weights, sel.device, sel.digest, target, v, sel.image) for v in wanted]
    st.caption(
        f"Input: the sidebar's image ({sel.image_name}), preprocessed for the loaded model "
        f"({loaded.card.input_size} x {loaded.card.input_size}), a batch of one; target: "
        + (f"its true class, {true_label}." if target is not None else "each net's own main-head prediction.")
        + f" Fresh nets with {len(loaded.classes)} classes and the paper's 5x5 kernels, weights seeded 0. All nets in "
        "training mode: batch norm normalizes over this one image's pixels, dropout is seeded."
    )
    return pd.concat(frames, ignore_index=True)


def _depth_and_ratio(frame: pd.DataFrame, losses: list[str], quantity: str, aux_layers: bool, source: str) -> None:
    frame = frame[frame["quantity"] == quantity]
    shown = frame[frame["loss"].isin(losses)]
    if not aux_layers:
        shown = shown[shown["kind"] != "aux"]
    if shown.empty:
        st.info("Pick at least one loss, one network and one initialisation.")
        return
    chart(
        charts.gradient_depth(shown, value="norm", title=_QUANTITIES[quantity]),
        "Each line is one network and loss, from the input (left) to the classifier (right), on a log scale. "
        "Compare the levels: without batch norm at N(0, 0.01) the main loss (solid) leaves every layer orders of "
        "magnitude less gradient than batch norm does, as the small weights shrink the signal forward and the "
        "gradient backward. The combined loss (dashed) lifts the layers below inception4a, where aux1 joins, and "
        "less so those up to inception4d (aux2); past it the lines meet. With batch norm the two nearly coincide. "
        "Add Xavier or Kaiming to see how much of the gap is the initialisation.",
    )
    columns = ["series", *VARIANT_COLUMNS, *COLUMNS]
    download_csv(shown[columns], "Gradient norms shown (CSV)", f"gradient_norms_{source}.csv")

    st.subheader("With aux / without aux, per layer")
    ratios = _with_series(aux_ratio(frame.drop(columns="series")))
    chart(
        charts.aux_ratio_lines(ratios, value="ratio"),
        "The combined loss's gradient norm divided by the main loss's, per layer, on a log scale. Above the "
        "dotted line at 1 the auxiliary losses add gradient. The ratio is largest at the stem and falls to 1 "
        "after inception4d, past the last auxiliary branch, where only the main loss reaches.",
    )
    download_csv(ratios, "With/without-aux ratios (CSV)", f"aux_ratio_{source}.csv")


def _norm_text(value: float) -> str:
    return f"{value:.3g}" if 0.01 <= value < 1000 else f"{value:.1e}"


def _gain_text(ratio: float) -> str:
    """9371.8 -> '9,372x', 3.9957 -> '4x', 0.98931 -> '0.989x'."""
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def _findings(frame: pd.DataFrame) -> None:
    """The numbers the text quotes, read from the data shown: conv1's gradients per network."""
    first = frame["depth"] == frame["depth"].min()
    conv1 = frame[first & (frame["quantity"] == "weight")]
    table = conv1.pivot_table(index="series", columns="loss", values="norm", sort=False)
    if not {"main", "combined"} <= set(table.columns):
        return
    lines = [
        f"- **{series}**: {_norm_text(row['main'])} without aux, {_norm_text(row['combined'])} with aux: "
        f"**{_gain_text(row['combined'] / row['main'])}**"
        for series, row in table.iterrows()
    ]
    st.markdown(
        "**What the numbers say.** conv1's weight-gradient norm without the auxiliary losses (main) and "
        "with them (combined), and the gain:\n" + "\n".join(lines)
    )
    st.caption(
        "The size of the effect depends on the initialisation and on the input. At torchvision's N(0, 0.01) "
        "the net without batch norm shrinks the signal at every layer, so almost no gradient reaches the stem "
        "through the main head and the auxiliary heads, closer to the stem, multiply it by orders of magnitude; "
        "at Xavier or Kaiming, which keep the signal's scale, the gain is far smaller; with batch norm the "
        "gradient reaches the stem anyway and the auxiliary heads barely change it."
    )


# ---------------------------------------------------------------- recorded training runs


def _run_label(batch_norm: bool, aux: bool, init: str) -> str:
    return f"{'BN' if batch_norm else 'no BN'}, {'aux' if aux else 'no aux'}, {_INIT_NAMES[init]}"


def _run_labels(index: pd.DataFrame) -> dict[str, str]:
    return {row.name: _run_label(row.batch_norm, row.aux, row.init) for row in index.itertuples()}


def _log_range(norms: pd.Series) -> tuple[int, int]:
    positive = norms[norms > 0]
    return int(np.floor(np.log10(positive.min()))), int(np.ceil(np.log10(positive.max())))


def _recorded_training(runs: RecordedRuns) -> None:
    st.header("During training: recorded runs")
    index = runs.index
    first = index.iloc[0]
    st.caption(
        f"{len(index)} short runs on Fashion-MNIST, recorded with gnet.train.loop: {first['steps']} steps of "
        f"{first['batch_size']} images at {first['input_size']} px (a small fraction of an epoch), the paper's "
        f"layout with 5x5 kernels, SGD with one-cycle lr {first['lr']}, seed {first['seed']}; gradients logged "
        f"every {first['grad_log_every']} steps (the norm of the loss the run minimises). assets/runs/README.md "
        "has the commands."
    )
    labels = _run_labels(index)
    run = st.selectbox("Run", list(labels), format_func=labels.get, key=Keys.GRADIENT_RUN)
    norms = runs.grad_norms
    chart(
        charts.gradient_heatmap(norms[norms["run"] == run], log_range=_log_range(norms["norm"])),
        "Each row a layer (input at the top), each column a logged step; the colour is the gradient norm on a "
        "log scale shared by all runs, so switching runs compares them. Look at the top rows (the stem): "
        "without batch norm at N(0, 0.01) they stay dark, with or without the auxiliary losses. Blank cells "
        "got no gradient at all: the auxiliary heads of runs that do not train them, or gradients that vanished "
        "to exactly 0 in float32.",
    )
    chosen = st.multiselect("Runs to compare", list(labels), default=list(labels), format_func=labels.get,
                            key=Keys.GRADIENT_RUNS)
    losses = runs.losses[runs.losses["run"].isin(chosen)].assign(run=lambda f: f["run"].map(labels))
    if not losses.empty:
        chart(
            charts.loss_curves(losses),
            "Cross-entropy of each head on the training batch, and the total the optimizer minimised. "
            "Runs that learn fall below ln 10 = 2.30; an auxiliary head that is not trained stays there.",
        )
    accuracy = index.assign(run=index["name"].map(labels))[
        ["run", "accuracy_main", "accuracy_aux1", "accuracy_aux2", "eval_split", "wall_time_s", "command"]
    ]
    st.dataframe(
        accuracy, hide_index=True,
        column_config={
            **{f"accuracy_{h}": st.column_config.NumberColumn(f"{h} test acc.", format="percent")
               for h in HEADS},
            "eval_split": "evaluated on",
            "wall_time_s": st.column_config.NumberColumn("wall time (s)", format="%.0f"),
        },
    )
    st.caption("Test accuracy of each head after the run. 10% is chance: a run at 10% has not started to learn.")
    left, right = st.columns(2)
    with left:
        download_csv(norms.assign(run=norms["run"].map(labels)), "Gradient norms of every run (CSV)",
                     "recorded_grad_norms.csv")
    with right:
        download_csv(runs.losses.assign(run=runs.losses["run"].map(labels)), "Losses of every run (CSV)",
                     "recorded_losses.csv")


# ---------------------------------------------------------------- a live run


def _live_training() -> None:
    st.header("Train a short one yourself")
    with st.form(Keys.LIVE_FORM, border=True):
        a, b, c, d = st.columns([2, 2, 2, 3])
        batch_norm = a.toggle("Batch norm", key=Keys.LIVE_BATCH_NORM)
        aux = b.toggle("Auxiliary losses", value=True, key=Keys.LIVE_AUX)
        init = c.selectbox("Initialisation", INIT_SCHEMES, format_func=_INIT_NAMES.get, key=Keys.LIVE_INIT)
        steps = d.slider("Steps", 10, live.LIVE_MAX_STEPS, 30, step=10, key=Keys.LIVE_STEPS)
        request = live.LiveRunRequest(batch_norm=batch_norm, aux=aux, init=init, steps=int(steps))
        st.caption(
            f"Fashion-MNIST, batch {request.batch_size}, {request.input_size} px, the paper's 5x5 kernels, seed 0, "
            "on as many torch threads as the app already uses (the setting is process-wide, so a live run leaves "
            f"it alone); the gradient norms are logged every {live.LIVE_LOG_EVERY} steps and the finished "
            f"net is tested on {live.LIVE_EVAL_IMAGES} test images. A step takes a fraction of a second."
        )
        start = st.form_submit_button("Train", type="primary", key=Keys.LIVE_START, icon=":material/play_arrow:")
    if start:
        _train(request)
    else:
        st.session_state.pop(Keys.LIVE_ACTIVE, None)  # a live run lasts only as long as the script run that started it
    run = st.session_state.get(Keys.LIVE_RUN)
    if run is not None:
        _show_live(run)


def _train(request: live.LiveRunRequest) -> None:
    """Run ``request`` with a progress bar and a Stop button, keeping the run so far in the session.

    Clicking Stop (or any other widget) makes Streamlit start a new script run at once, while this
    one is still training. The new run clears the session's flag (the id of the run in progress),
    which this one checks every few steps: it then stops without training on or overwriting what
    the new script run shows.
    """
    run_id = uuid.uuid4().hex
    st.session_state[Keys.LIVE_ACTIVE] = run_id
    st.session_state.pop(Keys.LIVE_RUN, None)
    label = _run_label(request.batch_norm, request.aux, request.init)
    bar = st.progress(0.0, text=f"Training {label}: loading Fashion-MNIST...")
    st.button("Stop", key=Keys.LIVE_STOP, icon=":material/stop:",
              help=f"Stops within {live.LIVE_CHUNK} steps.")
    charts_so_far = st.empty()

    def on_chunk(run: live.LiveRun) -> bool:
        if st.session_state.get(Keys.LIVE_ACTIVE) != run_id:
            return False
        st.session_state[Keys.LIVE_RUN] = run
        bar.progress(min(run.step / request.steps, 1.0), text=f"Training {label}: step {run.step} of "
                     f"{request.steps}, {run.wall_time_s:.0f} s")
        with charts_so_far.container():
            _live_charts(run, final=False)
        return True

    try:
        run = live.train_live(request, on_chunk)
        if st.session_state.get(Keys.LIVE_ACTIVE) == run_id:
            st.session_state[Keys.LIVE_RUN] = run  # the finished run, with its test accuracy
    except gnet.GNetError as e:
        bar.empty()
        st.error(str(e))
        return
    finally:
        if st.session_state.get(Keys.LIVE_ACTIVE) == run_id:
            del st.session_state[Keys.LIVE_ACTIVE]
    if run.accuracy is not None:
        st.rerun()  # redraw without the progress bar and the Stop button; the result is in the session


def _show_live(run: live.LiveRun) -> None:
    request = run.request
    label = _run_label(request.batch_norm, request.aux, request.init)
    if run.accuracy is None:
        st.warning(f"{label}: stopped at step {run.step} of {request.steps}; the charts show the steps done.")
    else:
        accs = ", ".join(f"{h} {run.accuracy[h]:.0%}" for h in HEADS)
        st.success(f"{label}: {run.step} steps in {run.wall_time_s:.0f} s. Accuracy on {run.eval_split}: {accs} "
                   "(10% is chance).")
    _live_charts(run, final=True)


def _live_charts(run: live.LiveRun, *, final: bool) -> None:
    if run.grad_norms.empty:
        return
    label = _run_label(run.request.batch_norm, run.request.aux, run.request.init)
    chart(
        charts.gradient_heatmap(run.grad_norms, title=f"{label}, up to step {run.step}"),
        "The live run's gradient norm per layer (rows) and logged step (columns), log colour scale: compare "
        "the stem's rows with and without batch norm or auxiliary losses.",
        key=f"live_heatmap_{run.step}_{final}",  # redrawn every few steps within one script run
    )
    chart(
        charts.loss_curves(run.losses.assign(run=label)),
        "Each head's training loss so far; ln 10 = 2.30 is chance.",
        key=f"live_losses_{run.step}_{final}",
    )
    if final:
        left, right = st.columns(2)
        with left:
            download_csv(run.grad_norms.assign(run=label), "Live run: gradient norms (CSV)", "live_grad_norms.csv")
        with right:
            download_csv(run.losses.assign(run=label), "Live run: losses (CSV)", "live_losses.csv")
