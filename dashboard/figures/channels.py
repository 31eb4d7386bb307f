"""Pure figure builders for the Channels page: pictures in a grid, knock-outs, branch importance against cost.

Plain data in, a plotly Figure out (no Streamlit, no torch), as in :mod:`dashboard.figures.charts`,
whose colours and layout helpers they share; a module of their own keeps each file short.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.charts import BRANCH_COLORS, HEAD_COLORS, _compact, _short_stage, probability_bar

__all__ = ["importance_heatmaps", "importance_vs_cost", "knockout_bars", "picture_grid"]


def picture_grid(
    pictures: Sequence[np.ndarray], titles: Sequence[str], boxes: Sequence[tuple[float, float, float, float]] = (),
    *, columns: int = 3, row_height: int = 170,
) -> go.Figure:
    """Pictures (H x W x 3 floats in [0, 1]) in a grid, each titled, with an optional box (x0, y0, x1, y1) in pixels."""
    rows = -(-len(pictures) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.02,
                        vertical_spacing=0.3 / rows)
    for i, picture in enumerate(pictures):
        r, c = divmod(i, columns)
        fig.add_trace(go.Image(z=np.clip(picture * 255, 0, 255).astype(np.uint8), hoverinfo="skip"), r + 1, c + 1)
        if i < len(boxes):
            x0, y0, x1, y1 = boxes[i]
            # Image pixels are centred on integers: pixel edges sit half a unit off.
            fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5, row=r + 1, col=c + 1,
                          line={"color": "#ff3b30", "width": 2})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.for_each_annotation(lambda a: a.update(font={"size": 11}))
    return _compact(fig, 30 + row_height * rows, legend=False)


def knockout_bars(top: pd.DataFrame, untrained: Sequence[str] = ()) -> go.Figure:
    """Per head, the intact net's top classes: probability intact (grey) and with the knock-outs (the head's colour).

    Each bar is labelled with its probability (:func:`dashboard.figures.charts.probability_bar`).

    ``top``: head, label, intact, knocked_out (one row per class shown, in the order to draw).
    """
    heads = list(dict.fromkeys(top["head"]))
    titles = [f"{h} (untrained)" if h in untrained else h for h in heads]
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=titles, horizontal_spacing=0.14)
    for i, head in enumerate(heads, start=1):
        rows = top[top["head"] == head].iloc[::-1]
        for column, name, color in (("intact", "intact", "#c7c7c7"), ("knocked_out", "knocked out", HEAD_COLORS[head])):
            fig.add_trace(
                probability_bar(rows[column].tolist(), y=rows["label"], name=name, marker_color=color,
                                legendgroup=name, showlegend=i == 1,
                                hovertemplate="%{y}: %{customdata:.2%}<extra>" + f"{head}, {name}</extra>"),
                row=1, col=i,
            )
        fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=i)
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.12})
    return _compact(fig, 360)


def importance_heatmaps(grid: pd.DataFrame) -> go.Figure:
    """One modules x branches heatmap per head of the accuracy drop (points) when that one branch is knocked out.

    ``grid``: :func:`dashboard.figures.tables.importance_grid`; cells of modules a head does not read are left blank.
    """
    heads = list(dict.fromkeys(grid["head"]))
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=heads, horizontal_spacing=0.06, shared_yaxes=True)
    top = max(float(np.nanmax(np.abs(grid["drop_pp"].to_numpy(dtype=float)), initial=0.0)), 0.1)
    for i, head in enumerate(heads, start=1):
        table = grid[grid["head"] == head].pivot(index="module", columns="branch", values="drop_pp")
        table = table.loc[list(dict.fromkeys(grid["module"])), list(dict.fromkeys(grid["branch"]))]
        fig.add_trace(
            go.Heatmap(
                z=table.to_numpy(), x=list(table.columns), y=[_short_stage(m) for m in table.index],
                coloraxis="coloraxis", texttemplate="%{text}",
                # + 0.0 turns a drop that rounds to -0.0 (a few images' gain) into 0.0
                text=[[("" if np.isnan(v) else f"{round(v, 1) + 0.0:.1f}") for v in row] for row in table.to_numpy()],
                hovertemplate="%{y} %{x}: %{z:.2f} points<extra>" + head + "</extra>",
                xgap=2, ygap=2,
            ),
            row=1, col=i,
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(coloraxis={"colorscale": "RdBu_r", "cmin": -top, "cmax": top,
                                 "colorbar": {"title": "points lost"}})
    return _compact(fig, 420)


def importance_vs_cost(frame: pd.DataFrame, head: str) -> go.Figure:
    """Each branch's FLOPs (log) against the accuracy ``head`` loses without it, coloured by branch.

    Branches that cost the head at least one point are named by module; the crowd near zero is on hover.
    A name goes above its point, or beside it where another named point sits just above (:func:`_label_positions`).
    """
    named = (frame["drop_pp"] >= 1).to_numpy()
    names = [_short_stage(m) if n else "" for m, n in zip(frame["module"], named)]
    fig = px.scatter(
        frame, x="flops", y="drop_pp", color="branch", color_discrete_map=BRANCH_COLORS, log_x=True,
        text=names, category_orders={"branch": list(BRANCH_COLORS)},
        hover_data={"module": True, "params": ":,", "flops": ":,", "drop_pp": ":.2f"},
        labels={"flops": "branch FLOPs per image (log)", "drop_pp": f"{head} accuracy lost (points)"},
    )
    fig.update_traces(marker={"size": 10})
    positions = pd.Series(_label_positions(frame["flops"].to_numpy(float), frame["drop_pp"].to_numpy(float), named),
                          index=frame.index)
    for trace in fig.data:  # px made one trace per branch, its points in the frame's order
        trace.textposition = positions[frame["branch"] == trace.name].tolist()
    fig.update_xaxes(dtick="D2", tickformat="~s")  # 1M 2M 5M 10M ...: a log axis readable without minor digits
    fig.add_hline(y=0, line_color="#999", line_width=1)
    return _compact(fig, 420)


# How close two named points may sit before a name collides with the other point, on the chart as the app draws
# it (~800 x 330 px of plot, two decades of FLOPs): a name is ~20 px wide, ~0.05 decades, and sits ~20 px above its
# point's centre, ~7% of the drop axis. Checked on renders of the three heads' charts for the bundled net:
# "4c" (2.2 points) was printed over "3b" (1.4) at ~2.1 MFLOPs for main, and "3b" ran into 4c's point for aux2
# (3.3 against 1.7 points, 6% of that axis apart).
_NEAR_DECADES, _NEAR_SHARE = 0.06, 0.1


def _label_positions(flops: np.ndarray, drops: np.ndarray, named: np.ndarray) -> list[str]:
    """Where each point's name goes: "top center", or "middle right" for a named point with another named one
    just above it (below it, the name ran into the points at 0 in the app's narrower chart)."""
    x = np.log10(np.maximum(flops, 1.0))
    span = max(float(np.nanmax(drops, initial=0.0)) - float(np.nanmin(drops, initial=0.0)), 1.0)
    positions = ["top center"] * len(drops)
    for i in np.flatnonzero(named):
        gap = drops - drops[i]
        above = named & (np.abs(x - x[i]) < _NEAR_DECADES) & (gap > 0) & (gap < _NEAR_SHARE * span)
        if above.any():
            positions[i] = "middle right"
    return positions
