"""The Gradients page's results: the recorded runs, and the comparison on the current image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dashboard.cache.analyses import analysis
from dashboard.cache.bounds import TABLES_KEPT, TTL_S
from dashboard.cache.models import model

if TYPE_CHECKING:
    import pandas as pd

    from gnet.train.runs import RecordedRuns

__all__ = ["live_comparison", "recorded_runs"]


@st.cache_data(show_spinner="Reading the recorded runs...")
def recorded_runs() -> RecordedRuns:
    """The recorded training runs and the comparison at initialisation (assets/runs), read once.

    Raises gnet.DatasetError naming the file when assets/runs is missing or corrupt.
    """
    from gnet.train.runs import load_runs

    return load_runs()


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Back-propagating through the nets on your image...")
def live_comparison(
    weights: str, device: str, digest: str, target: int | None, variant: str, _image: Image.Image
) -> pd.DataFrame:
    """:func:`gnet.inspect.gradients.compare_variants` on the current image, one variant per call.

    ``variant`` is ``"loaded"`` (the selected model) or an init scheme (fresh nets with and
    without batch norm, the loaded model's class count). Cached per variant, so adding one
    to the plot computes only it. ``target``: the true class, or None for each net's own
    prediction. The input is the cached preprocessed image, a batch of one.
    """
    import torch

    from gnet.inspect.gradients import compare_variants

    loaded = model(weights, device)
    x = analysis(weights, device, digest, _image).input.unsqueeze(0).to(loaded.device)
    y = None if target is None else torch.tensor([target], device=loaded.device)
    if variant == "loaded":
        return compare_variants(x, y, loaded_net=loaded.net, inits=())
    return compare_variants(x, y, inits=(variant,), num_classes=len(loaded.classes))
