"""Attributions (captum): which pixels, or which positions of a branch, a head's class rests on."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import url
from dashboard.cache import attributions, bounds, models
from dashboard.cache.attributions import AttributionRequest
from dashboard.figures import charts
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, domain_banner, download_csv, download_json, need_analysis
from gnet.inspect.attributions import (
    GRAD_CAM_BRANCH,
    GRAD_CAM_MIN_SIZE,
    IG_MAX_SAMPLES,
    IG_MAX_STEPS,
    METHODS,
    Attribution,
    Stopped,
    evidence_elsewhere,
    grad_cam_module,
    plan_integrated_gradients,
)
from gnet.net.layers import BRANCHES, modules_read_by

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
    requests = _controls(sel, loaded, result)
    run = st.button("Compute", type="primary", key=Keys.ATTR_RUN, icon=":material/play_arrow:")
    if not run:
        st.session_state.pop(Keys.ATTR_ACTIVE, None)  # a computation lasts only as long as the run that started it
    if st.session_state.pop(Keys.ATTR_STOPPED, False):
        st.info("Stopped. Nothing was kept from the interrupted computation.")
    try:
        found = [(request, item) for request in requests if (item := _result(sel, request, run)) is not None]
    except Stopped:
        return
    if not found:
        st.info("Press **Compute** to run the selected methods. Results are kept, so coming back costs nothing.")
        return
    columns = st.columns(len(found))
    for column, (request, item) in zip(columns, found):
        with column:
            chart(
                charts.overlay(result.image, item.heatmap, item.title, height=440),
                _caption(item, _other_branches_with_evidence(sel, request, item, run)),
                key=f"attr-{item.method}",
            )
    buttons = st.columns(len(found) + 1)
    with buttons[0]:
        download_json([a.to_dict() for _, a in found], "Settings (JSON)", "attributions.json")
    for column, (_, item) in zip(buttons[1:], found):
        with column:
            download_csv(pd.DataFrame(np.round(item.heatmap, 4)), f"{METHODS[item.method]} map (CSV)", f"{item.method}.csv")


def _other_branches_with_evidence(sel: Selection, request: AttributionRequest, item: Attribution,
                                  run: bool) -> list[str] | None:
    """For an empty Grad-CAM map, the module's other branches whose map (same head and class) is not empty.

    They are computed with it (Grad-CAM takes one forward and backward pass) and kept like any other
    map; None where the map is not an empty Grad-CAM, or where one of them is not known.
    """
    if item.method != "grad_cam" or not item.blank:
        return None
    module = item.layer.rsplit(".", 1)[0]
    with st.spinner(f"Looking for evidence in the other branches of {module}...", show_time=True):
        others = [attributions.attribution(sel.weights, sel.device, sel.digest, sel.image,
                                           dataclasses.replace(request, branch=branch), compute=run)
                  for branch in BRANCHES if branch != request.branch]
    if any(other is None for other in others):
        return None
    return [other.layer.rsplit(".", 1)[1] for other in others if not other.blank]


def _caption(item: Attribution, elsewhere: list[str] | None = None) -> str:
    """The method's caption and time; first, for a map that is zero everywhere, why it is empty, and (``elsewhere``,
    for Grad-CAM) which other branches of the module do find evidence."""
    caption = f"{_CAPTIONS[item.method]} ({item.seconds:.1f} s)"
    if not item.blank:
        return caption
    if item.method == "grad_cam":
        module = item.layer.rsplit(".", 1)[0]
        if elsewhere is None:
            where = "Another branch or module may show where the evidence is."
        else:
            clause = evidence_elsewhere(module, elsewhere)
            how = f"pick {'it' if len(elsewhere) == 1 else 'one'} under Grad-CAM branch" if elsewhere else \
                "try another module"
            where = f"{clause[0].upper()}{clause[1:]}: {how}."
        why = (f"**Nothing here: on {item.layer}, no position supports {item.target_label}.** The branch's maps "
               f"weighted by their gradient sum to a negative value everywhere, and Grad-CAM keeps only the "
               f"positive part. {where}")
    else:
        why = f"**Nothing here: the {item.head} head's {item.target_label} score does not change with any pixel.**"
    return f"{why} {caption}"


def _stop() -> None:
    st.session_state.pop(Keys.ATTR_ACTIVE, None)
    st.session_state[Keys.ATTR_STOPPED] = True


def _result(sel: Selection, request: AttributionRequest, run: bool) -> Attribution | None:
    """The kept result for ``request``; computed, with a progress bar and a Stop button, when ``run`` is set."""
    if not run:
        return attributions.attribution(sel.weights, sel.device, sel.digest, sel.image, request, compute=False)
    name = METHODS[request.method]
    run_id = uuid.uuid4().hex
    st.session_state[Keys.ATTR_ACTIVE] = run_id
    bar = st.progress(0.0, text=f"{name}...")
    stop = st.empty()
    if request.method == "integrated_gradients":
        stop.button("Stop", key=f"{Keys.ATTR_STOP}-{run_id}", on_click=_stop, icon=":material/stop:",
                    help="Stops after the noisy copy in progress.")

    def progress(done: float) -> bool:
        bar.progress(done, text=f"{name}: {done:.0%}")
        return st.session_state.get(Keys.ATTR_ACTIVE) == run_id

    try:
        return attributions.attribution(
            sel.weights, sel.device, sel.digest, sel.image, request, compute=True, progress=progress
        )
    finally:
        bar.empty()
        stop.empty()


def _controls(sel: Selection, loaded, result) -> list[AttributionRequest]:
    classes = loaded.classes
    left, middle, right = st.columns(3)
    url.restore(url.METHOD, Keys.ATTR_METHODS, ["saliency", "grad_cam"], lambda ms: set(ms) <= set(METHODS),
                parse=lambda text: text.split(","), what=f"list of methods ({', '.join(METHODS)})")
    methods = left.multiselect("Methods", list(METHODS), format_func=METHODS.get, key=Keys.ATTR_METHODS)
    url.publish(url.METHOD, ",".join(methods) or None)
    heads = list(result.heads)
    url.restore(url.HEAD, Keys.ATTR_HEAD, heads[0], heads.__contains__, what="head (main, aux1 or aux2)")
    head = middle.selectbox("Head", heads, key=Keys.ATTR_HEAD)
    url.publish(url.HEAD, head)
    url.restore(url.CLASS, f"{Keys.ATTR_TARGET}-{head}", result.heads[head].top[0].index,
                lambda i: 0 <= i < len(classes), parse=classes.index, what="class of these weights")
    target = right.selectbox(
        "Target class", range(len(classes)), format_func=lambda i: classes[i], key=f"{Keys.ATTR_TARGET}-{head}",
        help="Starts on the chosen head's top-1 class.",
    )
    url.publish(url.CLASS, classes[target])
    module = branch = ""
    if "grad_cam" in methods:
        readable = modules_read_by(head)
        a, b = st.columns(2)
        module_key = f"{Keys.ATTR_MODULE}-{head}"
        start = grad_cam_module(head, {name: m.output_shape for name, m in result.modules.items()})
        url.restore(url.MODULE, module_key, start, readable.__contains__,
                    what=f"module that {head} reads (inception3a to {readable[-1]})")
        module = a.selectbox(
            "Grad-CAM module", readable, key=module_key,
            help=f"{head} reads the modules up to {readable[-1]}. Starts on the deepest one with maps of "
                 f"{GRAD_CAM_MIN_SIZE}x{GRAD_CAM_MIN_SIZE} or more.",
        )
        url.publish(url.MODULE, module)
        url.restore(url.BRANCH, Keys.ATTR_BRANCH, GRAD_CAM_BRANCH, BRANCHES.__contains__, what="branch")
        branch = b.selectbox("Grad-CAM branch", list(BRANCHES), key=Keys.ATTR_BRANCH)
        url.publish(url.BRANCH, branch)
    n_steps = nt_samples = 0
    if "integrated_gradients" in methods:
        a, b = st.columns(2)
        asked_steps = a.slider("IG steps along the path", 4, IG_MAX_STEPS, 16, step=4, key=Keys.ATTR_STEPS)
        asked_samples = b.slider("NoiseTunnel samples", 1, IG_MAX_SAMPLES, 4, key=Keys.ATTR_SAMPLES)
        per_pass = models.seconds_per_pass(sel.weights, sel.device)
        plan = plan_integrated_gradients(asked_steps, asked_samples, per_pass, bounds.ATTRIBUTION_BUDGET_S)
        if plan.clamped:
            st.warning(plan.notice, icon="⏱️")
        n_steps, nt_samples = plan.n_steps, plan.nt_samples
        st.caption(
            f"Integrated Gradients runs {n_steps * nt_samples} forward and backward passes, as many at once as "
            f"memory allows: about {plan.seconds:.0f} s here (one pass measured at {per_pass * 1e3:.0f} ms on "
            f"{models.device_name(sel.device)}). One request may take up to "
            f"{bounds.ATTRIBUTION_BUDGET_S:.0f} s; Stop ends it early."
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
