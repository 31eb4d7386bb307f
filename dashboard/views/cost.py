"""Cost: FLOPs and parameters per layer and per branch, and the paper's Table 1 beside them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import url
from dashboard.cache import cost
from dashboard.figures import charts, tables
from dashboard.state import Keys, Selection
from dashboard.views.common import chart, download_csv, need_model
from gnet.net.table1 import TOLERANCE_PCT

__all__ = ["render"]

_SIZES = (64, 96, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512)
_METRICS = {"flops": "FLOPs (2 per multiply-add)", "macs": "multiply-adds", "params": "parameters"}
# The table's counts with thousands separators ("9633792" read as a digit string) and readable names;
# the CSV keeps the frame's names and plain integers.
_LAYER_COLUMNS = {
    "out_shape": st.column_config.TextColumn("output (C x H x W)"),
    "params": st.column_config.NumberColumn("params", format="localized"),
    "macs": st.column_config.NumberColumn("multiply-adds", format="localized"),
    "flops": st.column_config.NumberColumn("FLOPs", format="localized"),
    "other_ops": st.column_config.NumberColumn(
        "other ops", format="localized",
        help="An estimate for the layers without multiply-adds (not in FLOPs): ReLU 1 per output element, batch "
             "norm 2, pooling the window's size per output element."),
}


def render(sel: Selection) -> None:
    st.title("Cost")
    st.caption(
        "Analytic cost of every layer for one image (gnet.flops): FLOPs count a multiply-add as 2, as "
        "torch.utils.flop_counter does; the paper and fvcore count it as 1 (the 'macs' column)."
    )
    loaded = need_model(sel)
    sizes = sorted({*_SIZES, loaded.card.input_size})
    left, right = st.columns([3, 2])
    url.restore(url.SIZE, Keys.COST_SIZE, loaded.card.input_size, sizes.__contains__, parse=int,
                what=f"input size ({', '.join(map(str, sizes))})")
    size = left.select_slider("Input size (pixels per side)", sizes, key=Keys.COST_SIZE)
    url.publish(url.SIZE, size)
    metric = right.radio("Measure", list(_METRICS), format_func=_METRICS.get, horizontal=True, key=Keys.COST_METRIC)
    try:
        rows = cost.cost_table(sel.weights, sel.device, int(size))
    except ValueError as e:
        st.error(f"{e}.")
        st.stop()
    _totals(rows)
    chart(
        charts.cost_by_layer(rows, metric),
        f"{_METRICS[metric].capitalize()} of each layer in forward order, coloured by module (one hue per stage: "
        "3 blue, 4 green, 5 purple, darker with depth). "
        "Look at the stem's share against the nine Inception modules, and at how small the classifier is.",
    )
    chart(
        charts.cost_treemap(rows, metric),
        "The same cost nested by module, branch and layer: click a module to zoom in. Compare the 1x1 "
        "'reduce' layers with the 3x3 and '5x5' convolutions they feed.",
    )
    st.subheader("Every layer")
    st.caption("Click a column header to sort.")
    st.dataframe(rows, hide_index=True, height=320, column_config=_LAYER_COLUMNS)
    download_csv(rows, "Per-layer cost (CSV)", f"googlenet_cost_{size}px.csv")
    st.page_link("routes/design.py", label="What would the 1x1 reductions, the stem or global average pooling cost "
                 "done otherwise? The Design lab builds those networks", icon=":material/science:")
    _paper()


def _totals(rows: pd.DataFrame) -> None:
    a, b, c, d = st.columns(4)
    a.metric("parameters", f"{rows['params'].sum() / 1e6:.2f} M")
    b.metric("multiply-adds", f"{rows['macs'].sum() / 1e9:.2f} G")
    c.metric("FLOPs", f"{rows['flops'].sum() / 1e9:.2f} G")
    d.metric("layers", f"{len(rows)}")


def _paper() -> None:
    st.subheader("The paper's Table 1, side by side")
    table = cost.table1()
    st.caption(
        f"{table.attrs.get('citation', '')} Beside it, two networks built by gnet at 224 x 224 with 1000 classes: "
        "the paper's layout (real 5x5 branches, no batch norm, LRN) and torchvision's (a 3x3 '5x5' branch, batch "
        "norm). This compares architectures; the loaded network's own cost is in the sections above."
    )
    st.dataframe(
        _side_by_side(table).style.apply(_mark_differences, axis=1),
        hide_index=True,
        height=35 * (len(table) + 1) + 3,  # every row visible, no empty row below
    )
    st.markdown("**Why the rows differ**\n\n" + "\n".join(
        f"- **{', '.join(rows)}**: {reason}" for rows, reason in tables.table1_reasons(table)
    ))
    st.caption(
        "T1: Table 1; paper: the paper's layout built here; tv: torchvision's layout; diff: paper against T1; "
        "output: H x W x C. "
        f"Params count conv and linear weights, ops count multiply-adds, as the paper does; auxiliary heads are "
        f"left out, as in the paper's table; {_EMPTY} = not applicable. Highlighted: a difference of more than "
        f"{TOLERANCE_PCT:.0f}% from Table 1 in the paper's layout. Every Inception module of the paper's layout is "
        f"within {TOLERANCE_PCT:.0f}% of Table 1 except where Table 1 disagrees with the widths in its own row: "
        "the paper's layout built here has exactly the widths Table 1 lists (#1x1, #3x3 reduce, ...), and the reason "
        "above gives what those widths imply."
    )
    chart(
        charts.paper_vs_computed(table),
        "Multiply-adds per Table 1 row. The paper's layout (blue) matches Table 1 (grey) except at conv1, the "
        "table's known oddity; torchvision's layout (orange) is lower in every Inception module because its "
        "'5x5' branch is really 3x3.",
    )
    st.caption(
        "The loaded network may differ again: another input size (ops scale with the number of pixels) or "
        "another number of classes (only the classifier changes)."
    )
    download_csv(table.drop(columns="reasons"), "Table 1 comparison (CSV)", "googlenet_table1_comparison.csv")


_EMPTY = "–"
_COLUMNS = {  # table1_comparison column -> shown header (short: the whole table fits the page)
    "name": "layer",
    "output_size": "output",
    "params_k": "K params, T1",
    "params_k_paper_layout": "K params, paper",
    "params_k_paper_layout_diff_pct": "params diff",
    "params_k_torchvision": "K params, tv",
    "ops_m": "M ops, T1",
    "ops_m_paper_layout": "M ops, paper",
    "ops_m_paper_layout_diff_pct": "ops diff",
    "ops_m_torchvision": "M ops, tv",
}  # the reasons are listed below the table, each once with the rows it explains


def _side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as text: numbers formatted, and an en dash where a value does not apply.

    Text because st.dataframe writes a missing number as "None", which reads as a bug.
    """
    shown = table[list(_COLUMNS)].copy()
    for column in _COLUMNS:
        if column.endswith("_diff_pct"):
            shown[column] = shown[column].map(lambda v: _EMPTY if pd.isna(v) else f"{v:+.1f}%")
        elif column.startswith(("params", "ops")):
            shown[column] = shown[column].map(lambda v: _EMPTY if pd.isna(v) else f"{v:,.1f}")
    return shown.rename(columns=_COLUMNS)


def _mark_differences(row: pd.Series) -> list[str]:
    diffs = [abs(float(row[c].rstrip("%"))) for c in ("params diff", "ops diff") if row[c] != _EMPTY]
    style = "background-color: #fff3cd" if any(d > TOLERANCE_PCT for d in diffs) else ""
    return [style] * len(row)
