"""Design lab: flip GoogLeNet's design choices and see what they cost, measured on the built net."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import gnet

from dashboard.cache import design as cache
from dashboard.figures import design as figures
from dashboard.state import Keys, Selection
from dashboard.views.common import chart

__all__ = ["render"]

_SIZES = (64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512)
_STEMS = {"paper": "paper: 7x7/2 convolution", "3x3": "3x3: three 3x3 convolutions (32-32-64)",
          "vgg": "vgg: VGG's two 3x3/1 at full resolution"}
_CLASSIFIERS = {"gap": "global average pooling + linear", "fc": "flatten + linear (AlexNet/VGG)"}
_CLAIM_TITLES = {"stem": "The stem", "reductions": "1x1 reductions", "pool_proj": "Pool projection",
                 "classifier": "Global average pooling", "aux": "Auxiliary heads"}


def render(sel: Selection) -> None:
    st.title("Design lab")
    st.caption(
        "Why is GoogLeNet built as it is? Flip one of the paper's choices and compare the built network with the "
        "paper's: parameters and multiply-adds from the cost model (equal to torch.utils.flop_counter), the "
        "memory autograd saves for backward and the speed, measured here. Batch norm, which later made the "
        "auxiliary heads largely unnecessary, is on the Gradients page."
    )
    st.page_link("routes/gradients.py", label="Batch norm and the auxiliary heads: the Gradients page",
                 icon=":material/trending_down:")
    choice, size, classes = _controls()
    try:
        result = cache.compare((choice,), size, classes)
    except gnet.GNetError as e:  # a size or option the design cannot take: one sentence
        st.error(str(e))
        return
    _verdicts(result, size, classes)
    _table(result, choice, size, classes, sel.device)
    chart(
        figures.stage_bars(result["stage_macs"]),
        "Multiply-adds per depth stage, the chosen design beside the paper's: where the cost moved. The aux "
        "heads' bar is a training-time cost only.",
    )
    _stem_panel(size)
    _every_choice(size, classes)
    _recorded_runs()


def _controls() -> tuple[tuple, int, int]:
    a, b, c = st.columns(3)
    stem = a.selectbox("Stem", list(_STEMS), format_func=_STEMS.get, key=Keys.DESIGN_STEM)
    classifier = a.radio("Classifier", list(_CLASSIFIERS), format_func=_CLASSIFIERS.get, key=Keys.DESIGN_CLASSIFIER)
    reductions = b.toggle("1x1 reductions before the 3x3 and 5x5", value=True, key=Keys.DESIGN_REDUCTIONS)
    pool_proj = b.toggle("1x1 projection after the pool branch", value=True, key=Keys.DESIGN_POOL_PROJ)
    aux = b.toggle("Auxiliary heads at training time", value=True, key=Keys.DESIGN_AUX)
    size = c.select_slider("Input size (pixels per side)", _SIZES, value=224, key=Keys.DESIGN_SIZE)
    classes = c.number_input("Classes", min_value=2, max_value=100_000, value=1000, step=1, key=Keys.DESIGN_CLASSES)
    if not reductions and not pool_proj:
        b.caption("Both off: the paper's Figure 2a, the naive Inception module.")
    return (stem, reductions, pool_proj, classifier, aux), int(size), int(classes)


def _verdicts(result: dict, size: int, classes: int) -> None:
    found = [c for claims in result["claims"].values() for c in claims]
    if not found:  # the paper's own design: what each of its choices buys, from every one-choice change
        from gnet.net.design import CHOICES

        every = cache.compare(tuple(_choice_of(d) for d in CHOICES), size, classes)
        st.subheader("What each of the paper's choices buys")
        several = "".join(f", or {len(claims)} for {name}," for name, claims in every["claims"].items()
                          if len(claims) > 1)
        st.caption(f"Each line flips one choice of the paper's design{several} at {size} px and {classes:,} "
                   "classes; flip it above to see the network.")
        lines = []
        for name, claims in every["claims"].items():
            marks = [":green[**as claimed**]" if c["holds"] else ":orange[**not as claimed**]" for c in claims]
            if len(claims) == 1:
                lines.append(f"- **{name}** ({marks[0]}): {claims[0]['measured']}")
            else:  # one line per design, each of its choices below it (a design named twice read as a repeat)
                lines.append(f"- **{name}**, {len(claims)} choices together:")
                lines += [f"  - {_CLAIM_TITLES[c['choice']]} ({m}): {c['measured']}" for c, m in zip(claims, marks)]
        st.markdown("\n".join(lines))
        return
    st.subheader("What the numbers say")
    for c in found:
        text = f"**{_CLAIM_TITLES[c['choice']]}.** {c['claim']} {c['measured']}"
        (st.success if c["holds"] else st.warning)(text if c["holds"] else f"{text} The numbers do not bear the "
                                                   "claim out here.")


def _choice_of(d) -> tuple:
    return (d.stem, d.reductions, d.pool_proj, d.classifier, d.aux)


def _table(result: dict, choice: tuple, size: int, classes: int, device: str) -> None:
    st.subheader("The chosen design beside the paper's")
    measured = st.session_state.get(_measured_key(choice, size, classes, device))
    rows = result["table"] if measured is None else measured["table"]
    st.dataframe(figures.comparison_table(rows), hide_index=True)
    left, right = st.columns([1, 3])
    batch = left.radio("Batch for the timing", (1, 8, 32), horizontal=True, key=Keys.DESIGN_BATCH)
    if right.button("Measure memory and speed", key=Keys.DESIGN_MEASURE):
        with st.spinner(f"Timing both designs, interleaved, on {device} (a few passes each)..."):
            try:
                st.session_state[_measured_key(choice, size, classes, device)] = cache.measure(
                    choice, size, classes, device, int(batch)
                )
            except gnet.GNetError as e:
                st.error(str(e))
                return
        st.rerun()
    if measured is not None:
        st.caption(
            f"Measured on {measured['device']}: the bytes autograd saves for backward in one training step of one "
            "image (counted once per buffer, parameters left out), and the median of 3 passes of each design, "
            "alternated with the paper's so that a busy machine slows both alike. The forward computes the "
            "auxiliary heads in both designs; at test time they are dropped."
        )
    else:
        st.caption("From the cost model, for one image. Measure adds the memory and the latency on this server.")


def _measured_key(choice: tuple, size: int, classes: int, device: str) -> str:
    return f"{Keys.DESIGN_MEASURE}-result-{choice}-{size}-{classes}-{device}"


def _stem_panel(size: int) -> None:
    st.subheader("Why the stem shrinks the map first")
    terms = cache.stem_terms(size)
    st.markdown(
        "A convolution costs **C_out x C_in x K_H x K_W x H_out x W_out** multiply-adds. On the 3 input channels of "
        "a photo, C_in is tiny and H x W is the whole image, so the size of the map is what to shrink."
    )
    st.dataframe(figures.stem_frame(terms), hide_index=True,
                 column_config={"stem": st.column_config.TextColumn(width="large")})  # its longest name was cut
    by = {t["stem"]: t for t in terms}
    paper = by["paper stem"]
    full = by["7x7/1, 64 channels (no downsampling)"]
    thin = by["7x7/1, 16 channels (channels shrunk instead)"]
    vgg = sum(t["macs"] for t in terms if t["stem"] == "vgg stem")
    st.markdown(
        f"At {size} px the paper's conv1 costs **{paper['macs'] / 1e6:,.0f} M**. The same 7x7 convolution without "
        f"its stride would cost {full['macs'] / 1e6:,.0f} M ({full['macs'] / paper['macs']:.0f}x); to pay only "
        f"{thin['macs'] / 1e6:,.0f} M at full resolution it would keep {thin['c_out']} channels instead of "
        f"{paper['c_out']}. Halving H and W buys four times the channels for the same cost. VGG's block, two 3x3 "
        f"convolutions at full resolution, costs {vgg / 1e6:,.0f} M ({vgg / paper['macs']:.1f}x the paper's conv1): "
        f"its second convolution reads 64 channels, not 3, over the whole map."
    )


def _every_choice(size: int, classes: int) -> None:
    st.subheader("Every one-choice change, at a glance")
    from gnet.net.design import CHOICES  # a constant of the library; torch is loaded by now

    choices = tuple(_choice_of(d) for d in CHOICES)
    try:
        result = cache.compare(choices, size, classes)
    except gnet.GNetError as e:
        st.error(str(e))
        return
    st.dataframe(figures.comparison_table(result["table"]), hide_index=True)
    st.caption(
        "From the cost model. The naive module (Figure 2a) drops the reductions and the pool projection together, "
        "as the paper's figure does. `gnet design` prints this table with measured memory and latency."
    )


def _recorded_runs() -> None:
    st.subheader("Does the cheaper design also learn as well?")
    try:
        runs = cache.recorded_runs()
    except gnet.GNetError as e:  # the file is missing or damaged: one sentence
        st.error(str(e))
        return
    summary = runs.summary
    st.caption(
        f"Recorded runs (scripts/record_design_runs.py): each design trained the same {int(summary['steps'].max())} "
        f"steps of batch {runs.batch_size} on Fashion-MNIST at {runs.input_size} px, on this project's CPU, scored on "
        f"the first {int(summary['eval_images'].max()):,} test images."
    )
    x = st.radio("Against", ("step", "train_wall_s"), horizontal=True, key=Keys.DESIGN_CURVE_X,
                 format_func={"step": "training steps", "train_wall_s": "wall time"}.get)
    chart(
        figures.training_curves(runs.curves, x),
        "The main head's test accuracy. Against steps the designs get the same budget of updates; against wall "
        "time a design pays for its cost.",
    )
    paper = summary.iloc[0]
    shown = pd.DataFrame({
        "design": summary["name"],
        "test accuracy (main)": summary["accuracy_main"].map("{:.1%}".format),
        "s per step": [f"{t:.2f} ({t / paper['time_per_step_s']:.2f}x)" for t in summary["time_per_step_s"]],
        "peak memory (MB)": [f"{m:,.0f} ({m / paper['peak_rss_mb']:.2f}x)" for m in summary["peak_rss_mb"]],
        "params (M)": (summary["params"] / 1e6).map("{:.2f}".format),
    })
    st.dataframe(shown, hide_index=True)
    best = summary.loc[summary["accuracy_main"].idxmax()]
    st.markdown(
        f"After {int(paper['steps'])} steps the paper's design reaches {paper['accuracy_main']:.1%}; the best is "
        f"**{best['name']}** at {best['accuracy_main']:.1%}, and the worst **"
        f"{summary.loc[summary['accuracy_main'].idxmin(), 'name']}** at {summary['accuracy_main'].min():.1%}. "
        "Each is one run of one seed, so a difference of a point or so may not survive another seed; the time per "
        "step is what a design pays on every step."
    )
    st.caption("Peak memory is the training process's peak resident set, data and Python included.")
