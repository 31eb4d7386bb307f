"""The Cost page's tables: per-layer cost, the bottleneck's saving, the paper's Table 1, stages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

import gnet
from dashboard.cache.bounds import TABLES_KEPT, TTL_S
from dashboard.cache.models import model

if TYPE_CHECKING:
    import pandas as pd

    from dashboard.figures.tables import Bottleneck

__all__ = ["bottleneck", "cost_table", "stages", "table1"]


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Counting operations...")
def cost_table(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """Per-layer cost (gnet.flops) as a table, in forward order (raises ValueError if too small)."""
    from gnet.net.cost import to_frame

    frame = to_frame(gnet.flops(model(weights, device).net, input_size))
    frame["out_shape"] = frame["out_shape"].map(lambda s: " x ".join(map(str, s)))
    frame.insert(0, "depth", range(len(frame)))
    return frame


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def bottleneck(weights: str, device: str, input_size: int) -> Bottleneck:
    """:func:`dashboard.figures.tables.bottleneck_cost` of inception3a in the loaded network, for one ``input_size`` px image."""
    from dashboard.figures import tables

    net = model(weights, device).net
    return tables.bottleneck_cost(gnet.flops(net, input_size), net.config.branch5x5_kernel)


@st.cache_data(show_spinner="Building the paper's and torchvision's layouts...")
def table1() -> pd.DataFrame:
    """The paper's Table 1 beside the paper's layout and torchvision's, both built by gnet at 224 px."""
    return gnet.table1_comparison(224)


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def stages(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """:func:`dashboard.figures.tables.stage_summary` of the loaded network's cost table."""
    from dashboard.figures import tables

    return tables.stage_summary(cost_table(weights, device, input_size))
