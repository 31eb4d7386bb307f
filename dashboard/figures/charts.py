"""Pure figure builders: plain data in, a plotly Figure out (no Streamlit, no torch).

Each function is testable without a browser; the views add the captions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from gnet.inspect.drawing import OVERLAY_STOPS
from gnet.net.layers import AUX_ATTACH, INCEPTION_MODULES

__all__ = [
    "BRANCH_COLORS",
    "MODULE_COLORS",
    "SLIVER",
    "agreement_heatmap",
    "aux_ratio_lines",
    "channel_map",
    "cost_by_layer",
    "cost_treemap",
    "energy_shares",
    "feature_grid",
    "gradient_depth",
    "gradient_heatmap",
    "head_metrics",
    "loss_curves",
    "overlay",
    "paper_vs_computed",
    "probability_bar",
    "stage_diagram",
    "top_k_bars",
]

BRANCH_COLORS: dict[str, str] = {"1x1": "#4C78A8", "3x3": "#F58518", "5x5": "#54A24B", "pool_proj": "#B279A2"}
HEAD_COLORS: dict[str, str] = {"main": "#4C78A8", "aux1": "#F58518", "aux2": "#54A24B"}
_STAGE_COLORS = {
    "stem": "#9ecae1", "inception": "#4C78A8", "pool": "#bdbdbd", "aux": "#F58518", "classifier": "#54A24B",
}


def _module_colors() -> dict[str, str]:
    """One colour per ``module`` of gnet.net.cost's rows: the modules of a stage (3, 4, 5) in shades of one
    hue, light to dark with depth, so that 13 modules get 13 colours (a 10-colour palette repeated: the
    stem and inception5a both showed dark blue) and a stage reads as one; aux1 keeps the Heads page's
    orange, aux2 is red and the classifier near black. The "pool" rows cost nothing, so no chart shows them."""
    hues = {"3": "Blues", "4": "Greens", "5": "Purples"}
    colors = {"stem": "#7f7f7f"}
    for stage, scale in hues.items():
        modules = [m for m in INCEPTION_MODULES if m.removeprefix("inception").startswith(stage)]
        colors |= dict(zip(modules, sample_colorscale(scale, np.linspace(0.45, 0.9, len(modules)).tolist())))
    return colors | {"aux1": HEAD_COLORS["aux1"], "aux2": "#E45756", "head": "#1f1f1f"}


MODULE_COLORS: dict[str, str] = _module_colors()
_LOSS_DASH: dict[str, str] = {"main": "solid", "aux1": "dot", "aux2": "dashdot", "combined": "dash"}
_MAP_SCALE = "Viridis"
# Transparent where the map is low; the stops are gnet's, so `gnet attribute --out` draws a map alike.
_OVERLAY_SCALE = [[level, f"rgba({r}, {g}, {b}, {alpha})"] for level, (r, g, b), alpha in OVERLAY_STOPS]


def _compact(fig: go.Figure, height: int, *, legend: bool = True) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=legend)
    return fig


def _si(value: float) -> str:
    """1234567 -> '1.23M': short engineering notation for params and FLOPs."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _short_stage(stage: str) -> str:
    return stage.removeprefix("inception")


def _shape_text(out_shape: str) -> str:
    """'256 x 28 x 28' (C x H x W) -> '28x28x256', the paper's H x W x C."""
    dims = out_shape.split(" x ")
    if len(dims) == 3:
        c, h, w = dims
        return f"{h}x{w}x{c}"
    return f"{dims[0]}"


# ---------------------------------------------------------------- heads


SLIVER = 0.007  # the narrowest bar drawn (~1.5 px): plotly draws no text on a bar that rounds to 0 px ("0.0%" went)


def probability_bar(probs: Sequence[float], **bar: object) -> go.Bar:
    """Horizontal bars of ``probs`` (``bar``: go.Bar's other arguments), hovered from ``customdata``; labelled inside
    from a fifth of the axis, else outside (plotly's "auto" stood "9.0%" on end or shrank it); ~0 drawn as a SLIVER."""
    inside = ["inside" if p >= 0.2 else "outside" for p in probs]
    return go.Bar(x=np.maximum(probs, SLIVER), customdata=list(probs), text=[f"{p:.1%}" for p in probs],
                  textposition=inside, textangle=0, orientation="h", **bar)


def top_k_bars(tops: Mapping[str, Sequence[tuple[str, float]]], untrained: Sequence[str] = ()) -> go.Figure:
    """One horizontal bar chart per head of its top-k (label, probability), side by side."""
    heads = list(tops)
    titles = [f"{h} (untrained)" if h in untrained else h for h in heads]
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=titles, horizontal_spacing=0.14)
    for i, head in enumerate(heads, start=1):
        labels = [label for label, _ in tops[head]][::-1]
        probs = [p for _, p in tops[head]][::-1]
        fig.add_trace(probability_bar(probs, y=labels, marker_color=HEAD_COLORS.get(head, "#888"), name=head,
                                      hovertemplate="%{y}: %{customdata:.2%}<extra>" + head + "</extra>"),
                      row=1, col=i)
        fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=i)
    return _compact(fig, 300, legend=False)


def head_metrics(summary: pd.DataFrame) -> go.Figure:
    """Entropy and KL divergence to the main head, one bar per head."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["entropy (nats)", "KL(main || head) (nats)"])
    colors = [HEAD_COLORS.get(h, "#888") for h in summary["head"]]
    fig.add_trace(go.Bar(x=summary["head"], y=summary["entropy_nats"], marker_color=colors, name="entropy"), 1, 1)
    fig.add_trace(go.Bar(x=summary["head"], y=summary["kl_to_main_nats"], marker_color=colors, name="KL"), 1, 2)
    return _compact(fig, 260, legend=False)


def agreement_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Heads x heads: the fraction of sample images on which both pick the same class."""
    fig = px.imshow(matrix, text_auto=".0%", zmin=0, zmax=1, color_continuous_scale="Blues", aspect="auto")
    fig.update_layout(coloraxis_colorbar={"title": "agree", "tickformat": ".0%"})
    return _compact(fig, 300)


# ---------------------------------------------------------------- architecture


def stage_diagram(stages: pd.DataFrame) -> go.Figure:
    """GoogLeNet's blocks left to right with output shape and FLOPs; aux heads hang below.

    ``stages`` has columns stage, kind, out_shape, params, flops in forward order
    (see :func:`dashboard.figures.tables.stage_summary`).
    """
    main = stages[stages["kind"] != "aux"].reset_index(drop=True)
    x_of = {stage: float(i) for i, stage in enumerate(main["stage"])}
    pos = {row.stage: (x_of[row.stage], 0.0) for row in main.itertuples()}
    for row in stages[stages["kind"] == "aux"].itertuples():
        pos[row.stage] = (x_of.get(AUX_ATTACH.get(row.stage, ""), 0.0), -1.25)
    half_w, half_h = 0.44, 0.45
    # Shapes and annotations as plain dicts, handed to the figure once: plotly validates its whole
    # list again on every add_shape/add_annotation, so adding 48 one by one took 0.4 s (44 ms now).
    shapes, notes = [], []
    for row in stages.itertuples():
        x, y = pos[row.stage]
        shapes.append({
            "type": "rect", "x0": x - half_w, "x1": x + half_w, "y0": y - half_h, "y1": y + half_h,
            "fillcolor": _STAGE_COLORS.get(row.kind, "#ccc"), "line": {"color": "white", "width": 1},
            "layer": "below",
        })
        notes.append({
            "x": x, "y": y, "showarrow": False,
            "text": f"<b>{_short_stage(row.stage)}</b><br>{_shape_text(row.out_shape)}<br>"
            + (f"{_si(row.flops)}FLOP" if row.flops else "no MACs"),
            "font": {"size": 11, "color": "white" if row.kind in ("inception", "aux", "classifier") else "black"},
        })
    arrow = {"xref": "x", "yref": "y", "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 2, "arrowwidth": 1,
             "text": ""}
    for a, b in zip(main["stage"][:-1], main["stage"][1:]):
        notes.append({"x": pos[b][0] - half_w, "y": 0, "ax": pos[a][0] + half_w, "ay": 0, "arrowsize": 1, **arrow})
    for stage, parent in AUX_ATTACH.items():
        if stage in pos and parent in pos:
            notes.append({"x": pos[stage][0], "y": pos[stage][1] + half_h, "ax": pos[parent][0], "ay": -half_h, **arrow})
    fig = go.Figure(layout={"shapes": shapes, "annotations": notes})
    fig.add_trace(
        go.Scatter(
            x=[pos[s][0] for s in stages["stage"]],
            y=[pos[s][1] for s in stages["stage"]],
            mode="markers",
            marker={"size": 30, "opacity": 0},
            customdata=np.stack(
                [stages["stage"], stages["out_shape"], stages["params"].map(_si), stages["flops"].map(_si)], axis=1
            ),
            hovertemplate="<b>%{customdata[0]}</b><br>output %{customdata[1]}<br>"
            "params %{customdata[2]}<br>FLOPs %{customdata[3]}<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False, range=[-0.6, len(main) - 0.4])
    fig.update_yaxes(visible=False, range=[-1.85, 0.6])
    return _compact(fig, 280, legend=False)


# ---------------------------------------------------------------- branches


def feature_grid(maps: np.ndarray, channels: Sequence[int], *, columns: int = 4) -> go.Figure:
    """A grid of feature maps (k x h x w) on one shared colour scale, each titled with its channel index.

    The maps are tiled into one heatmap, a gap of one blank pixel between them, rather than one
    subplot each: a single trace on a single pair of axes builds and serialises ~10x faster, and
    a branches page draws four of these on every visit. Hover gives the channel and the value.
    """
    k, h, w = maps.shape
    rows = -(-k // columns)
    # Blank rows between the rows of maps leave room for the titles of the row below. The grid's
    # width sets its scale on screen (about 110 px per map, gap included, in the app's branch cards), so the gap grows with w:
    # with one blank row, 8 x 8 maps (64 px input) had their titles printed over the maps above.
    gap = max(1, -(-(w + 1) // 6))
    z = np.full((rows * (h + gap) - gap, columns * (w + 1) - 1), np.nan, dtype=np.float32)
    which = np.full(z.shape, -1)
    for i, (m, c) in enumerate(zip(maps, channels)):
        r, col = divmod(i, columns)
        cell = np.s_[r * (h + gap) : r * (h + gap) + h, col * (w + 1) : col * (w + 1) + w]
        z[cell], which[cell] = m, c
    titles = [
        {"x": col * (w + 1) + (w - 1) / 2, "y": r * (h + gap) - 0.5, "text": f"ch {c}", "showarrow": False,
         "yshift": 8, "font": {"size": 11}}
        for (r, col), c in zip((divmod(i, columns) for i in range(k)), channels)
    ]
    heat = go.Heatmap(
        z=z, customdata=which, colorscale=_MAP_SCALE, showscale=False, hoverongaps=False,
        hovertemplate="channel %{customdata}: %{z:.3g}<extra></extra>",
    )
    fig = go.Figure(heat, layout={
        "annotations": titles, "xaxis": {"visible": False, "constrain": "domain"},
        "yaxis": {"visible": False, "autorange": "reversed", "scaleanchor": "x"},
    })
    return _compact(fig, 40 + 120 * rows, legend=False)


def channel_map(activation: np.ndarray, title: str, *, height: int = 380) -> go.Figure:
    """One feature map, large, with its values on hover."""
    fig = px.imshow(activation, color_continuous_scale=_MAP_SCALE, title=title)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title={"font": {"size": 13}})
    return _compact(fig, height)


def overlay(image: np.ndarray, heat: np.ndarray, title: str = "", *, height: int = 300) -> go.Figure:
    """``heat`` (any h x w, 0 or more) stretched over ``image`` (H x W x 3 floats in [0, 1]), see-through where low.

    The colour scale starts at 0, not at the map's minimum: a flat map (an empty Grad-CAM is all zeros)
    stays see-through instead of taking plotly's middle colour, a red wash over the whole image.
    """
    rows, cols = image.shape[:2]
    dy, dx = rows / heat.shape[0], cols / heat.shape[1]
    low = min(0.0, float(heat.min()))
    high = max(float(heat.max()), low + 1e-12)
    fig = go.Figure(go.Image(z=np.clip(image * 255, 0, 255).astype(np.uint8), hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=heat, x0=dx / 2 - 0.5, dx=dx, y0=dy / 2 - 0.5, dy=dy, colorscale=_OVERLAY_SCALE, zmin=low, zmax=high,
            zsmooth="best", showscale=False, hovertemplate="%{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(visible=False, range=[-0.5, cols - 0.5])
    fig.update_yaxes(visible=False, range=[rows - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title={"text": title, "font": {"size": 13}})
    return _compact(fig, height, legend=False)


def energy_shares(shares: pd.DataFrame) -> go.Figure:
    """Stacked bars: each branch's share of its module's output energy (sum of squares), per module."""
    fig = px.bar(
        shares, x="module", y="energy_share", color="branch", color_discrete_map=BRANCH_COLORS,
        category_orders={"branch": list(BRANCH_COLORS)}, labels={"energy_share": "share of output energy"},
    )
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _compact(fig, 320)


# ---------------------------------------------------------------- gradients


def _series_colors(names: Sequence[str]) -> dict[str, str]:
    palette = px.colors.qualitative.D3
    return {name: palette[i % len(palette)] for i, name in enumerate(dict.fromkeys(names))}


def _module_ticks(layers: pd.DataFrame) -> tuple[list[int], list[str]]:
    """Depth ticks at the first main-path layer of each module: stem (conv1-3), 3a, 3b, 4a, ..., fc."""
    main = layers[layers["kind"] != "aux"].drop_duplicates("layer").sort_values("depth")
    module = main["module"].where(main["kind"] != "stem", "stem")
    first = main.assign(module=module).drop_duplicates("module")
    return first["depth"].tolist(), [_short_stage(m) for m in first["module"]]


def _log_axis(fig: go.Figure, title: str, values: pd.Series) -> None:
    # Over 3 to 10 decades plotly also labels 2 and 5 in each ("10⁴ 5 2 10³ 5 2"): one tick per decade reads.
    decades = np.log10(values.max() / values.min()) if len(values) else 0.0
    fig.update_yaxes(type="log", exponentformat="power", title=title, dtick=1 if 3 <= decades <= 10 else None)


def gradient_depth(frame: pd.DataFrame, *, value: str, title: str) -> go.Figure:
    """Gradient norm per layer against depth, log scale: one line per (series, loss).

    ``frame`` has columns series, loss, layer, depth, kind and ``value``. Colour = series,
    dash = loss (main solid, combined dashed); the aux heads' own layers (kind "aux") are
    drawn as crosses off the line; zeros (layers a loss does not reach) are left out.
    """
    shown = frame[frame[value] > 0].sort_values("depth")
    colors = _series_colors(shown["series"])
    fig = go.Figure()
    for (series, loss), rows in shown.groupby(["series", "loss"], sort=False):
        for aux, part in rows.groupby(rows["kind"] == "aux"):
            fig.add_trace(
                go.Scatter(
                    x=part["depth"], y=part[value], customdata=part["layer"], name=f"{series} · {loss}",
                    legendgroup=f"{series} · {loss}", showlegend=not aux,
                    mode="markers" if aux else "lines+markers",
                    line={"color": colors[series], "dash": _LOSS_DASH.get(loss, "solid"), "width": 2},
                    marker={"color": colors[series], "size": 9 if aux else 4, "symbol": "x" if aux else "circle"},
                    hovertemplate="%{customdata}: %{y:.3g}<extra>" + f"{series} · {loss}" + "</extra>",
                )
            )
    ticks, labels = _module_ticks(frame)
    fig.update_xaxes(tickvals=ticks, ticktext=labels, title="layer depth (forward order)")
    _log_axis(fig, title, shown[value])
    fig.update_layout(legend={"font": {"size": 11}})
    return _compact(fig, 440)


def aux_ratio_lines(ratios: pd.DataFrame, *, value: str) -> go.Figure:
    """Per layer, with-aux / without-aux gradient norm on a log scale, one line per series, a rule at 1.

    ``ratios`` has columns series, layer, depth, kind and ``value`` (gnet.inspect.gradients.aux_ratio plus a
    series label). Above 1: the auxiliary losses add gradient to the layer.
    """
    shown = ratios[ratios[value] > 0].sort_values("depth")
    colors = _series_colors(shown["series"])
    fig = go.Figure()
    for series, rows in shown.groupby("series", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["depth"], y=rows[value], customdata=rows["layer"], name=series, mode="lines+markers",
                line={"color": colors[series], "width": 2}, marker={"size": 4},
                hovertemplate="%{customdata}: %{y:.3g}x<extra>" + series + "</extra>",
            )
        )
    fig.add_hline(y=1, line={"color": "#555", "dash": "dot"})
    ticks, labels = _module_ticks(ratios)
    fig.update_xaxes(tickvals=ticks, ticktext=labels, title="layer depth (forward order)")
    _log_axis(fig, "with aux / without aux", shown[value])
    return _compact(fig, 380)


def gradient_heatmap(norms: pd.DataFrame, *, log_range: tuple[int, int] | None = None, title: str = "") -> go.Figure:
    """Layer x training step, colour = log10 of the gradient norm (columns step, layer, depth, norm).

    Layers run top to bottom in forward order; a zero norm (no gradient reached the layer) is
    blank. ``log_range`` (powers of ten) fixes the colour scale, so heatmaps of several runs compare.
    """
    table = norms.pivot_table(index=["depth", "layer"], columns="step", values="norm", sort=True)
    layers = table.index.get_level_values("layer")
    values = table.to_numpy(dtype=float)
    z = np.log10(np.where(values > 0, values, np.nan))
    if log_range is None:
        finite = z[np.isfinite(z)]
        log_range = (int(np.floor(finite.min())), int(np.ceil(finite.max()))) if finite.size else (0, 1)
    low, high = log_range
    ticks = list(range(low, high + 1, max(1, -(-(high - low) // 8))))
    fig = go.Figure(
        go.Heatmap(
            z=z, x=table.columns.tolist(), y=list(layers), customdata=values, colorscale=_MAP_SCALE,
            zmin=low, zmax=high, hoverongaps=False,
            colorbar={"title": "norm", "tickvals": ticks, "ticktext": [f"1e{t}" for t in ticks]},
            hovertemplate="%{y}, step %{x}: %{customdata:.3g}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", tickfont={"size": 9}, title="layer (forward order)")
    fig.update_xaxes(title="training step")
    fig.update_layout(title={"text": title, "font": {"size": 13}})
    return _compact(fig, 120 + 11 * len(layers))


def loss_curves(losses: pd.DataFrame) -> go.Figure:
    """Training loss of each head against step, one panel per head, one colour per run
    (columns run, step, head, loss)."""
    heads = list(dict.fromkeys(losses["head"]))
    colors = _series_colors(losses["run"])
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=heads, shared_yaxes=True, horizontal_spacing=0.03)
    for col, head in enumerate(heads, start=1):
        for run, rows in losses[losses["head"] == head].groupby("run", sort=False):
            fig.add_trace(
                go.Scatter(
                    x=rows["step"], y=rows["loss"], name=run, legendgroup=run, showlegend=col == 1,
                    mode="lines+markers", line={"color": colors[run]}, marker={"size": 4},
                    hovertemplate=f"{run}, {head}" + ": step %{x}, loss %{y:.3f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title="step", row=1, col=col)
    fig.update_yaxes(title="cross-entropy", row=1, col=1)
    return _compact(fig, 320)


# ---------------------------------------------------------------- cost


def cost_by_layer(rows: pd.DataFrame, metric: str = "flops") -> go.Figure:
    """One bar per layer with a non-zero ``metric``, in forward order, coloured by module."""
    shown = rows[rows[metric] > 0]
    fig = px.bar(shown, x="name", y=metric, color="module", color_discrete_map=MODULE_COLORS,
                 hover_data=["kind", "branch", "out_shape"])
    fig.update_xaxes(showticklabels=False, title="layer (forward order; hover for names)")
    return _compact(fig, 380)


def cost_treemap(rows: pd.DataFrame, metric: str = "flops") -> go.Figure:
    """Module -> branch -> layer, area proportional to ``metric``."""
    shown = rows[rows[metric] > 0].copy()
    has_branch = shown["branch"] != ""
    shown["part"] = shown["branch"].where(has_branch, shown["name"])
    shown["layer"] = shown["name"].where(has_branch, None)
    fig = px.treemap(shown, path=[px.Constant("GoogLeNet"), "module", "part", "layer"], values=metric,
                     color="module", color_discrete_map={**MODULE_COLORS, "(?)": "lightgrey"})  # (?): the root
    fig.update_traces(hovertemplate="%{label}<br>%{value:,.0f}<extra></extra>")
    return _compact(fig, 460, legend=False)


def paper_vs_computed(table: pd.DataFrame) -> go.Figure:
    """Multiply-adds (M) per Table 1 row: the paper's, the paper's layout built here, torchvision's layout.

    ``table`` has columns name, ops_m, ops_m_paper_layout, ops_m_torchvision (gnet.table1_comparison).
    """
    costed = table[table["ops_m"].notna() | table["ops_m_paper_layout"].notna()]
    series = {
        "Table 1 (paper)": ("ops_m", "#bdbdbd"),
        "paper's layout, built here": ("ops_m_paper_layout", HEAD_COLORS["main"]),
        "torchvision's layout": ("ops_m_torchvision", HEAD_COLORS["aux1"]),
    }
    fig = go.Figure(
        [go.Bar(x=costed["name"], y=costed[column], name=name, marker_color=color)
         for name, (column, color) in series.items()]
    )
    fig.update_layout(barmode="group", yaxis_title="M multiply-adds")
    return _compact(fig, 340)
