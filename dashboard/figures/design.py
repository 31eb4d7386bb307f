"""The Design lab's figures and tables from plain data (no Streamlit, no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = ["DESIGN_COLORS", "comparison_table", "stage_bars", "stem_frame", "training_curves"]

DESIGN_COLORS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B", "#9D755D")

_TABLE = {  # DesignComparison.table() key -> (header, unit divisor, format)
    "params": ("params (M)", 1e6, "{:,.2f}"),
    "params_inference": ("params at test time (M)", 1e6, "{:,.2f}"),
    "macs": ("multiply-adds at test time (G)", 1e9, "{:,.2f}"),
    "macs_training": ("multiply-adds in training (G)", 1e9, "{:,.2f}"),
    "fc_params": ("classifier params (M)", 1e6, "{:,.2f}"),
    "width": ("inception5b channels", 1, "{:,.0f}"),
    "activation_bytes": ("saved for backward, 1 image (MiB)", 2**20, "{:,.1f}"),
}
_RATIOS = {"params": "params_ratio", "macs": "macs_ratio", "activation_bytes": "activation_ratio"}


def comparison_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Designs as rows, numbers formatted with their ratio to the first row (the paper's) where one is kept;
    latency columns (``forward_b1_s``, ``train_b32_s``, ...) in milliseconds with their ratios."""
    out = []
    for row in rows:
        shown = {"design": row["design"]}
        for key, (header, unit, fmt) in _TABLE.items():
            if key not in row:
                continue
            text = fmt.format(row[key] / unit)
            if key in _RATIOS:
                text += f" ({row[_RATIOS[key]]:.2f}x)"
            shown[header] = text
        for key in sorted(k for k in row if k.endswith("_s") and k.startswith(("forward_", "train_"))):
            kind, batch = key[:-2].split("_b")
            header = f"{'forward' if kind == 'forward' else 'training step'}, batch {batch} (ms)"
            shown[header] = f"{row[key] * 1e3:,.1f} ({row[key[:-2] + '_ratio']:.2f}x)"
        out.append(shown)
    return pd.DataFrame(out)


def stage_bars(stage_macs: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Grouped bars: multiply-adds per depth stage (x) for each design (colour), in G."""
    frame = pd.DataFrame(
        [{"design": d, "stage": s, "G multiply-adds": v / 1e9} for d, stages in stage_macs.items() for s, v in stages.items()]
    )
    fig = px.bar(frame, x="stage", y="G multiply-adds", color="design", barmode="group",
                 color_discrete_sequence=DESIGN_COLORS)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


def stem_frame(terms: Sequence[Mapping]) -> pd.DataFrame:
    """The stem cost formula worked through: one row per convolution, the product written out."""
    return pd.DataFrame([
        {
            "stem": t["stem"], "layer": t["layer"],
            "C_out x C_in x K_H x K_W x H_out x W_out": (
                f"{t['c_out']} x {t['c_in']} x {t['k_h']} x {t['k_w']} x {t['h_out']} x {t['w_out']}"
            ),
            "M multiply-adds": round(t["macs"] / 1e6, 1),
        }
        for t in terms
    ])


def training_curves(curves: pd.DataFrame, x: str, head: str = "main") -> go.Figure:
    """Test accuracy of ``head`` against ``x`` (``step`` or ``train_wall_s``), one line per recorded run."""
    frame = curves[curves["head"] == head]
    labels = {"step": "training step", "train_wall_s": "training wall time (s)", "accuracy": "test accuracy",
              "run": "design"}
    fig = px.line(frame, x=x, y="accuracy", color="run", markers=True, labels=labels,
                  color_discrete_sequence=DESIGN_COLORS)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="", yaxis_tickformat=".0%")
    return fig
