"""Pure figure builders for the circuits on the Channels page: a strip of connected channels, the families table.

Plain data in, a plotly Figure or a pandas table out (no Streamlit, no torch), like the rest of
:mod:`dashboard.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.charts import _compact
from gnet.net.layers import BRANCHES

__all__ = ["connection_strip", "family_frame", "family_heatmap"]

# Red excites, blue inhibits (plotly's RdBu runs from red at the low end, so it is reversed).
_SIGNED = "RdBu_r"


def connection_strip(
    titles: Sequence[str], kernels: Sequence[np.ndarray], pictures: Sequence[np.ndarray | None] = (),
) -> go.Figure:
    """One column per connected channel: its thumbnail on top (when given), its expanded-weight kernel below.

    Every kernel shares one colour range, symmetric around zero, so the strongest connection is the
    most saturated. ``pictures``: H x W x 3 floats in [0, 1], or None where there is none yet.
    """
    n = len(titles)
    with_pictures = any(p is not None for p in pictures)
    rows = 2 if with_pictures else 1
    fig = make_subplots(rows=rows, cols=max(n, 1), subplot_titles=list(titles), horizontal_spacing=0.012,
                        vertical_spacing=0.04, row_heights=[0.58, 0.42] if with_pictures else None)
    bound = max((float(np.abs(k).max()) for k in kernels), default=1.0) or 1.0
    # Beside the kernels' row only: under the pictures' row when there is one, the whole height when not.
    bar = {"thickness": 8, "len": 0.45 if with_pictures else 1.0, "y": 0.2 if with_pictures else 0.5,
           "title": {"text": "weight", "side": "right"}, "nticks": 5}
    for i, kernel in enumerate(kernels):
        if with_pictures and i < len(pictures) and pictures[i] is not None:
            z = np.clip(np.asarray(pictures[i]) * 255, 0, 255).astype(np.uint8)
            fig.add_trace(go.Image(z=z, hoverinfo="skip"), 1, i + 1)
        fig.add_trace(
            go.Heatmap(
                z=np.asarray(kernel)[::-1], colorscale=_SIGNED, zmin=-bound, zmax=bound, zmid=0,
                showscale=i == n - 1, colorbar=bar,
                hovertemplate="%{z:.4f}<extra>" + titles[i] + "</extra>", xgap=1, ygap=1,
            ),
            rows, i + 1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.for_each_annotation(lambda a: a.update(font={"size": 10}))
    return _compact(fig, 250 if with_pictures else 130, legend=False)


def family_frame(rows: Sequence[Mapping[str, Any]], labels: Mapping[int, str] | None = None) -> pd.DataFrame:
    """The families table: a row per family, each branch as "members (expected)", the test's p-value.

    ``rows``: :meth:`gnet.inspect.circuits.Families.to_rows`; ``labels``: family -> what its best
    images are (shown as a column when given).
    """
    out = []
    for row in rows:
        shown: dict[str, Any] = {"family": int(row["family"]), "channels": int(row["channels"])}
        if labels is not None:
            shown["best images"] = labels.get(int(row["family"]), "")
        for b in BRANCHES:
            shown[b] = f"{row[b]} ({row[b + '_expected']:.1f})"
        shown["most in"] = row["most_gathered_in"]
        shown["p"] = float(row["p_value"])
        out.append(shown)
    return pd.DataFrame(out)


def family_heatmap(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Members over expected, per family and branch: above 1 (red) the branch holds more of the family than chance."""
    ratio = np.array([[row[b] / row[b + "_expected"] if row[b + "_expected"] else 0.0 for b in BRANCHES]
                      for row in rows])
    text = [[f"{row[b]}" for b in BRANCHES] for row in rows]
    names = [f"family {row['family']} ({row['channels']})" for row in rows]
    fig = go.Figure(go.Heatmap(
        z=np.log2(np.maximum(ratio, 1 / 8)), x=list(BRANCHES), y=names, text=text, texttemplate="%{text}",
        customdata=ratio, colorscale=_SIGNED, zmid=0, zmin=-3, zmax=3,
        colorbar={"title": {"text": "members / expected"}, "tickvals": [-3, -2, -1, 0, 1, 2, 3],
                  "ticktext": ["1/8", "1/4", "1/2", "1", "2", "4", "8"]},
        hovertemplate="%{y}, %{x}: %{text} channels, %{customdata:.2f}x what chance predicts<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _compact(fig, 60 + 34 * len(rows), legend=False)
