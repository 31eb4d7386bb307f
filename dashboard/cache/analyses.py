"""One image's analysis (one forward pass) and the figures and tables drawn from it; the samples' batch.

The analysis is computed once per (weights, device, image digest) and shared read-only, so
switching pages, modules or heads never repeats a forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

import gnet
from dashboard.cache.bounds import ANALYSES_KEPT, FIGURES_KEPT, TABLES_KEPT, TTL_S
from dashboard.cache.images import samples
from dashboard.cache.models import model
from gnet.net.layers import HEADS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["analysis", "batch_predictions", "branch_figures", "channel_figures", "energy_figure", "head_summary"]


@st.cache_resource(max_entries=ANALYSES_KEPT, ttl=TTL_S, show_spinner="Running the network on the image...")
def analysis(weights: str, device: str, digest: str, _image: Image.Image) -> gnet.Analysis:
    """Everything one forward pass reveals; shared read-only (never mutate it)."""
    return gnet.analyze(model(weights, device), _image, top=5)


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner="Drawing the feature maps...")
def branch_figures(weights: str, device: str, digest: str, module: str, _image: Image.Image) -> dict:
    """{branch: (grid of its most active maps, its mean map over the image)} for one module of one analysis.

    Shared read-only (never mutate them): building plotly figures costs far more server time
    than the forward pass, and a page revisit or another widget's change should not pay it again.
    """
    from dashboard.figures import charts

    result = analysis(weights, device, digest, _image)
    return {
        branch: (
            charts.feature_grid(stats.activation[stats.top_channels].numpy(), stats.top_channels),
            charts.overlay(result.image, stats.activation.mean(0).numpy(), f"mean of {branch} over the image"),
        )
        for branch, stats in result.modules[module].branches.items()
    }


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner=False)
def channel_figures(weights: str, device: str, digest: str, point: str, _image: Image.Image) -> tuple:
    """(the channel's map, the map over the image) for ``point`` = "inception4c.5x5:12", shared read-only."""
    from dashboard.figures import charts
    from gnet.net.layers import parse_channel

    target = parse_channel(point)
    result = analysis(weights, device, digest, _image)
    activation = result.modules[target.module].branches[target.branch].activation[target.channel].numpy()
    return (
        charts.channel_map(activation, f"{target.module}.{target.branch} channel {target.channel}", height=340),
        charts.overlay(result.image, activation, "on the image", height=340),
    )


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner=False)
def energy_figure(weights: str, device: str, digest: str, _image: Image.Image):
    """The energy-share chart of every module's branches for one analysis, shared read-only."""
    from dashboard.figures import charts, tables

    return charts.energy_shares(tables.branch_energy(analysis(weights, device, digest, _image)))


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def head_summary(weights: str, device: str, digest: str, _image: Image.Image) -> pd.DataFrame:
    """:func:`dashboard.figures.tables.head_summary` of the cached analysis."""
    from dashboard.figures import tables

    return tables.head_summary(analysis(weights, device, digest, _image))


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Classifying every sample image...")
def batch_predictions(weights: str, device: str) -> pd.DataFrame:
    """Each sample's true label (when known) and each head's top-1 class and probability."""
    loaded = model(weights, device)
    found = samples()
    probs = gnet.predict(loaded, [s.path for s in found])
    rows = []
    for i, sample in enumerate(found):
        row: dict[str, object] = {"sample": sample.name, "true_label": sample.true_label(loaded.classes)}
        for head in HEADS:
            p = probs[head][i]
            row[f"{head}_label"] = loaded.classes[int(p.argmax())]
            row[f"{head}_prob"] = float(p.max())
        rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows)
