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

from dashboard.figures.charts import BRANCH_COLORS, HEAD_COLORS, _compact, _short_stage

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

    ``top``: head, label, intact, knocked_out (one row per class shown, in the order to draw).
    """
    heads = list(dict.fromkeys(top["head"]))
    titles = [f"{h} (untrained)" if h in untrained else h for h in heads]
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=titles, horizontal_spacing=0.14)
    for i, head in enumerate(heads, start=1):
        rows = top[top["head"] == head].iloc[::-1]
        for column, name, color in (("intact", "intact", "#c7c7c7"), ("knocked_out", "knocked out", HEAD_COLORS[head])):
            fig.add_trace(
                go.Bar(x=rows[column], y=rows["label"], orientation="h", name=name, marker_color=color,
                       text=[f"{p:.1%}" for p in rows[column]], textposition="auto", legendgroup=name,
                       showlegend=i == 1, hovertemplate="%{y}: %{x:.2%}<extra>" + f"{head}, {name}</extra>"),
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
    """
    names = [_short_stage(m) if drop >= 1 else "" for m, drop in zip(frame["module"], frame["drop_pp"])]
    fig = px.scatter(
        frame, x="flops", y="drop_pp", color="branch", color_discrete_map=BRANCH_COLORS, log_x=True,
        text=names, category_orders={"branch": list(BRANCH_COLORS)},
        hover_data={"module": True, "params": ":,", "flops": ":,", "drop_pp": ":.2f"},
        labels={"flops": "branch FLOPs per image (log)", "drop_pp": f"{head} accuracy lost (points)"},
    )
    fig.update_traces(textposition="top center", marker={"size": 10})
    fig.update_xaxes(dtick="D2", tickformat="~s")  # 1M 2M 5M 10M ...: a log axis readable without minor digits
    fig.add_hline(y=0, line_color="#999", line_width=1)
    return _compact(fig, 420)
