"""Cost: FLOPs and parameters per layer and per branch, and the paper's Table 1 beside them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, resources
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, download_csv, need_model

__all__ = ["render"]

_SIZES = (64, 96, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512)
_METRICS = {"flops": "FLOPs (2 per multiply-add)", "macs": "multiply-adds", "params": "parameters"}
_DIFF_MARK = 1.0  # percent: a computed value further than this from the paper's is highlighted


def render(sel: Selection) -> None:
    st.title("Cost")
    st.caption(
        "Analytic cost of every layer for one image (gnet.flops): FLOPs count a multiply-add as 2, as "
        "torch.utils.flop_counter does; the paper and fvcore count it as 1 (the 'macs' column)."
    )
    loaded = need_model(sel)
    sizes = sorted({*_SIZES, loaded.card.input_size})
    left, right = st.columns([3, 2])
    size = left.select_slider(
        "Input size (pixels per side)", sizes, value=loaded.card.input_size, key=Keys.COST_SIZE
    )
    metric = right.radio("Measure", list(_METRICS), format_func=_METRICS.get, horizontal=True, key=Keys.COST_METRIC)
    try:
        rows = resources.cost_table(sel.weights, sel.device, int(size))
    except ValueError as e:
        st.error(f"{e}.")
        st.stop()
    _totals(rows)
    chart(
        charts.cost_by_layer(rows, metric),
        f"{_METRICS[metric].capitalize()} of each layer in forward order, coloured by module. "
        "Look at the stem's share against the nine Inception modules, and at how small the classifier is.",
    )
    chart(
        charts.cost_treemap(rows, metric),
        "The same cost nested by module, branch and layer: click a module to zoom in. Compare the 1x1 "
        "'reduce' layers with the 3x3 and '5x5' convolutions they feed.",
    )
    st.subheader("Every layer")
    st.caption("Click a column header to sort.")
    st.dataframe(rows, hide_index=True, height=320)
    download_csv(rows, "Per-layer cost (CSV)", f"googlenet_cost_{size}px.csv")
    _paper(sel, int(size), loaded.net.config.branch5x5_kernel)


def _totals(rows: pd.DataFrame) -> None:
    a, b, c, d = st.columns(4)
    a.metric("parameters", f"{rows['params'].sum() / 1e6:.2f} M")
    b.metric("multiply-adds", f"{rows['macs'].sum() / 1e9:.2f} G")
    c.metric("FLOPs", f"{rows['flops'].sum() / 1e9:.2f} G")
    d.metric("layers", f"{len(rows)}")


def _paper(sel: Selection, size: int, kernel5x5: int) -> None:
    st.subheader("The paper's Table 1, side by side")
    table = resources.paper_comparison(sel.weights, sel.device, size)
    st.caption(table.attrs.get("citation", ""))
    st.dataframe(
        _side_by_side(table).style.apply(_mark_differences, axis=1),
        hide_index=True,
        height=36 * (len(table) + 1) + 4,  # every row visible
        column_config={
            "params_k": st.column_config.NumberColumn("params K, paper", format="%.1f"),
            "params_k_computed": st.column_config.NumberColumn("params K, here", format="%.1f"),
            "params_k_diff_pct": st.column_config.NumberColumn("params diff", format="%+.1f%%"),
            "ops_m": st.column_config.NumberColumn("ops M, paper", format="%.0f"),
            "ops_m_computed": st.column_config.NumberColumn("ops M, here", format="%.1f"),
            "ops_m_diff_pct": st.column_config.NumberColumn("ops diff", format="%+.1f%%"),
            "note": st.column_config.TextColumn("why it differs", width="large"),
        },
    )
    st.caption(
        f"Rows highlighted differ from the paper by more than {_DIFF_MARK:.0f}% or in output size. Params count "
        "conv and linear weights, ops count multiply-adds, as the paper does; auxiliary heads are left out, as in "
        "the paper's table."
    )
    chart(
        charts.paper_vs_computed(table),
        "Multiply-adds per Table 1 row: the paper's figure (grey) next to this network's. conv1 is the paper's "
        "known oddity; the Inception rows sit lower when the '5x5' branch is really 3x3 (torchvision's layout).",
    )
    kernel_note = (
        "this network, like torchvision's GoogLeNet, builds the '5x5' branch with a 3x3 kernel "
        "(pytorch/vision#906), so those branches cost less than in the paper"
        if kernel5x5 == 3
        else "this network uses real 5x5 kernels, as the paper does (torchvision uses 3x3, pytorch/vision#906)"
    )
    notes = [
        "**conv1**: the paper lists 2.7K parameters and 34M ops, which no 7x7 convolution from 3 to 64 channels "
        "fits (9.4K weights, 118M multiply-adds at 224 px); the table itself is the odd one out.",
        f"**'5x5' branches**: {kernel_note}.",
        "**Input size**: the paper's ops are for 224 x 224; at another size every spatial layer scales with the "
        "number of pixels while the parameters stay the same.",
    ]
    st.markdown("\n".join(f"- {n}" for n in notes))
    download_csv(table, "Table 1 comparison (CSV)", f"googlenet_table1_vs_computed_{size}px.csv")


def _side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1's rows with the computed values beside the paper's; one output column, marked if it differs."""
    output = table["output_size_computed"].where(
        table["output_size"].isna() | (table["output_size"] == table["output_size_computed"]),
        table["output_size_computed"] + " (paper: " + table["output_size"].astype(str) + ")",
    )
    shown = table[
        ["name", "params_k", "params_k_computed", "params_k_diff_pct", "ops_m", "ops_m_computed", "ops_m_diff_pct", "note"]
    ].copy()
    shown.insert(1, "output (H x W x C)", output)
    return shown


def _mark_differences(row: pd.Series) -> list[str]:
    diffs = [abs(row[c]) for c in ("params_k_diff_pct", "ops_m_diff_pct") if pd.notna(row[c])]
    size_differs = "paper:" in str(row["output (H x W x C)"])
    style = "background-color: #fff3cd" if size_differs or any(d > _DIFF_MARK for d in diffs) else ""
    return [style] * len(row)
