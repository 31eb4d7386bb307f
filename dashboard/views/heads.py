"""Heads: aux1, aux2 and main compared on this image, over every sample image, and over a whole test set."""

from __future__ import annotations

import math

import streamlit as st

from dashboard.cache import analyses
from dashboard.figures import charts, tables
from dashboard.state import Selection
from dashboard.views import heads_dataset, own_classes
from dashboard.views.common import (
    aux_heads_note,
    chart,
    domain_banner,
    download_csv,
    need_model,
    try_analysis,
    untrained_warning,
)
from gnet.net.layers import HEADS

__all__ = ["render"]


def render(sel: Selection) -> None:
    st.title("Heads: aux1, aux2 and main")
    st.caption(
        "GoogLeNet has three classifiers: aux1 on inception4a, aux2 on inception4d, and the main head after "
        "global average pooling. One forward pass computes all three."
    )
    loaded = need_model(sel)
    untrained_warning(loaded)
    aux_heads_note(loaded)
    _one_image(sel, loaded)
    _batch(sel, loaded)
    heads_dataset.render(sel, loaded)
    own_classes.render(sel)


def _one_image(sel: Selection, loaded) -> None:
    """The three heads on the sidebar's image (the sections below need no image)."""
    result = try_analysis(sel)
    if result is None:
        return
    domain_banner(sel, loaded)
    tops = {h: [(p.label, p.prob) for p in head.top] for h, head in result.heads.items()}
    chart(
        charts.top_k_bars(tops, loaded.card.untrained_heads),
        f"Top-{len(tops['main'])} probabilities per head. A deeper head is usually more confident; a disagreement "
        "shows what the middle of the network has not resolved yet.",
    )
    summary = analyses.head_summary(sel.weights, sel.device, sel.digest, sel.image)
    st.dataframe(
        summary, hide_index=True,
        column_config={
            "top1": st.column_config.TextColumn("top-1"),
            "top1_prob": st.column_config.NumberColumn("top-1 prob", format="percent"),
            "entropy_nats": st.column_config.NumberColumn("entropy (nats)", format="%.3f"),
            "agrees_with_main": st.column_config.CheckboxColumn("agrees with main"),
            "kl_to_main_nats": st.column_config.NumberColumn("KL to main (nats)", format="%.4f"),
        },
    )
    chart(
        charts.head_metrics(summary),
        f"Entropy: how unsure each head is (uniform over {len(loaded.classes)} classes = "
        f"{math.log(len(loaded.classes)):.2f} nats). KL(main || head): how far a head's distribution is "
        "from the main head's (0 for main itself).",
    )
    download_csv(summary, "Head comparison (CSV)", "heads.csv")


def _batch(sel: Selection, loaded) -> None:
    st.subheader("All sample images")
    batch = analyses.batch_predictions(sel.weights, sel.device)
    if batch.empty:
        st.info("No sample images in assets/samples.")
        return
    accuracy = tables.head_accuracy(batch)
    left, right = st.columns([2, 3])
    with left:
        if accuracy["labelled_samples"].iloc[0]:
            st.dataframe(
                accuracy, hide_index=True,
                column_config={
                    "labelled_samples": st.column_config.NumberColumn("labelled samples"),
                    "accuracy": st.column_config.NumberColumn("top-1 accuracy", format="percent"),
                },
            )
            st.caption(
                f"Accuracy over the {accuracy['labelled_samples'].iloc[0]} samples whose true class these "
                "weights know (the Fashion-MNIST samples for the bundled net)."
            )
        else:
            st.info(
                "None of the samples has a true class among these weights' classes, so accuracy cannot be "
                "measured here; the agreement between heads still can."
            )
    with right:
        chart(
            charts.agreement_heatmap(tables.agreement_matrix(batch)),
            f"How often two heads pick the same class over the {len(batch)} sample images. "
            "Low agreement with an untrained head is expected.",
        )
    st.dataframe(
        batch, hide_index=True,
        column_config={  # the CSV keeps the frame's own names
            "true_label": st.column_config.TextColumn("true class"),
            **{f"{h}_label": st.column_config.TextColumn(h) for h in HEADS},
            **{f"{h}_prob": st.column_config.NumberColumn(f"{h} prob", format="percent") for h in HEADS},
        },
    )
    download_csv(batch, "Predictions on all samples (CSV)", "batch_predictions.csv")
