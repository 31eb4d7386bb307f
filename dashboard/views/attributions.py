"""Attributions (captum): which pixels, or which positions of a branch, a head's class rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, resources
from dashboard.resources import AttributionRequest
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, domain_banner, download_csv, download_json, need_analysis
from gnet.attributions import METHODS, Attribution
from gnet.layers import BRANCHES, modules_read_by

__all__ = ["render"]

_CAPTIONS = {
    "integrated_gradients": "Integrated Gradients: each pixel's share of the class score, accumulated along a path "
    "from a flat image of the training data's mean colour, averaged over noisy copies (NoiseTunnel). "
    "Look for the object's outline and texture.",
    "saliency": "Saliency: how much a small change of each pixel moves the class score. Noisy by nature; "
    "compare it with Integrated Gradients.",
    "grad_cam": "Grad-CAM: where the chosen branch's features, weighted by their gradient, support the class. "
    "Coarse (the branch's own resolution); deeper modules are coarser but more class-specific.",
}


def render(sel: Selection) -> None:
    st.title("Attributions")
    st.caption("What the chosen head's class depends on, drawn over the image the network saw (captum).")
    loaded, result = need_analysis(sel)
    domain_banner(sel, loaded)
    requests = _controls(loaded, result)
    run = st.button("Compute", type="primary", key=Keys.ATTR_RUN, icon=":material/play_arrow:")
    found = [item for request in requests if (item := _result(sel, request, run)) is not None]
    if not found:
        st.info("Press **Compute** to run the selected methods. Results are kept, so coming back costs nothing.")
        return
    columns = st.columns(len(found))
    for column, item in zip(columns, found):
        with column:
            chart(
                charts.overlay(result.image, item.heatmap, item.title, height=440),
                f"{_CAPTIONS[item.method]} ({item.seconds:.1f} s)",
                key=f"attr-{item.method}",
            )
    buttons = st.columns(len(found) + 1)
    with buttons[0]:
        download_json([a.to_dict() for a in found], "Settings (JSON)", "attributions.json")
    for column, item in zip(buttons[1:], found):
        with column:
            download_csv(pd.DataFrame(np.round(item.heatmap, 4)), f"{METHODS[item.method]} map (CSV)", f"{item.method}.csv")


def _result(sel: Selection, request: AttributionRequest, run: bool) -> Attribution | None:
    """The kept result for ``request``; computed, with a progress bar, when ``run`` is set."""
    if not run:
        return resources.attribution(sel.weights, sel.device, sel.digest, sel.image, request, compute=False)
    name = METHODS[request.method]
    bar = st.progress(0.0, text=f"{name}...")
    try:
        return resources.attribution(
            sel.weights, sel.device, sel.digest, sel.image, request, compute=True,
            progress=lambda done: bar.progress(done, text=f"{name}: {done:.0%}"),
        )
    finally:
        bar.empty()


def _controls(loaded, result) -> list[AttributionRequest]:
    classes = loaded.classes
    left, middle, right = st.columns(3)
    methods = left.multiselect(
        "Methods", list(METHODS), default=["saliency", "grad_cam"], format_func=METHODS.get, key=Keys.ATTR_METHODS
    )
    head = middle.selectbox("Head", list(result.heads), key=Keys.ATTR_HEAD)
    target = right.selectbox(
        "Target class", range(len(classes)), index=result.heads[head].top[0].index,
        format_func=lambda i: classes[i], key=f"{Keys.ATTR_TARGET}-{head}",
        help="Starts on the chosen head's top-1 class.",
    )
    module = branch = ""
    if "grad_cam" in methods:
        readable = modules_read_by(head)
        # Start on the deepest module whose maps are still at least 4x4: a 2x2 Grad-CAM (inception5b
        # at the bundled net's 64 px) says little about where in the image the evidence is.
        sharp = [i for i, name in enumerate(readable) if result.modules[name].output_shape[1] >= 4]
        a, b = st.columns(2)
        module = a.selectbox(
            "Grad-CAM module", readable, index=sharp[-1] if sharp else len(readable) - 1,
            key=f"{Keys.ATTR_MODULE}-{head}",
            help=f"{head} reads the modules up to {readable[-1]}. Starts on the deepest one with maps of 4x4 or more.",
        )
        branch = b.selectbox("Grad-CAM branch", list(BRANCHES), index=1, key=Keys.ATTR_BRANCH)
    n_steps = nt_samples = 0
    if "integrated_gradients" in methods:
        a, b = st.columns(2)
        n_steps = a.slider("IG steps along the path", 4, 64, 16, step=4, key=Keys.ATTR_STEPS)
        nt_samples = b.slider("NoiseTunnel samples", 1, 16, 4, key=Keys.ATTR_SAMPLES)
        st.caption(
            f"Integrated Gradients runs {n_steps * nt_samples} forward and backward passes, a few at a time to "
            "bound memory: tens of seconds on a CPU."
        )
    return [
        AttributionRequest(
            method=m, head=head, target=int(target),
            module=module if m == "grad_cam" else "", branch=branch if m == "grad_cam" else "",
            n_steps=n_steps if m == "integrated_gradients" else 0,
            nt_samples=nt_samples if m == "integrated_gradients" else 0,
        )
        for m in methods
    ]
