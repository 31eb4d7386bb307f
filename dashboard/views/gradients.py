"""Gradients: how strongly each layer's weights are pushed by a head's loss, against depth."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, resources
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, download_csv, need_analysis

__all__ = ["render"]


def render(sel: Selection) -> None:
    st.title("Gradients")
    st.caption(
        "The auxiliary heads were added to fight vanishing gradients: does a loss on aux1 or aux2 reach the "
        "early layers more strongly than the main loss does? One backward pass on the current image."
    )
    loaded, result = need_analysis(sel)
    classes = loaded.classes
    main_top = result.heads["main"].top[0].index
    true_label = sel.true_label(classes)
    left, right = st.columns(2)
    loss = left.selectbox("Loss", list(resources.LOSSES), format_func=resources.LOSSES.get, key=Keys.GRADIENT_LOSS)
    target = right.selectbox(
        "Target class", range(len(classes)), index=classes.index(true_label) if true_label else main_top,
        format_func=lambda i: classes[i], key=Keys.GRADIENT_TARGET,
        help="Cross-entropy against this class; it starts on the true class of a Fashion-MNIST sample, "
        "else on the main head's prediction.",
    )
    frame = resources.gradient_magnitudes(sel.weights, sel.device, sel.digest, loss, int(target), sel.image)
    chart(
        charts.gradient_depth(frame),
        "RMS of each convolution's and linear layer's weight gradient, by depth, on a log scale. "
        "With the main loss, look at how much smaller the early layers' gradients are; with an aux loss, "
        "layers after its branch point get none.",
    )
    with st.expander("Per-layer values"):
        st.dataframe(frame, hide_index=True)
    download_csv(frame, "Gradient magnitudes (CSV)", f"gradients_{loss}.csv")
