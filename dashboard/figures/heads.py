"""Pure figure builders for the heads over a whole set: plain data in, a plotly Figure out.

Kept apart from :mod:`dashboard.figures.charts` (one file per responsibility, each under 450 lines);
it shares that module's head colours and layout helper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.charts import HEAD_COLORS, _compact, _short_stage

__all__ = [
    "confidence_histograms",
    "confusion_matrices",
    "early_exit_curve",
    "per_class_accuracy",
    "probe_curve",
    "reliability_diagrams",
    "right_wrong_bars",
]


def _short(name: str) -> str:
    """Class names as axis labels: 'T-shirt/top' stays, long ImageNet names are cut."""
    return name if len(name) <= 14 else name[:13] + "…"


def confusion_matrices(confusion: Mapping[str, np.ndarray], classes: Sequence[str]) -> go.Figure:
    """One heatmap per head: rows are true classes, columns predictions, colour the share of the row.

    Rows are normalised so that classes with few images read the same as common ones; the
    hover gives the raw count.
    """
    heads = list(confusion)
    labels = [_short(c) for c in classes]
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=heads, horizontal_spacing=0.06)
    for i, head in enumerate(heads, start=1):
        counts = np.asarray(confusion[head], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / counts.sum(axis=1, keepdims=True)
        small = len(classes) <= 12
        fig.add_trace(
            go.Heatmap(
                z=share, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues", showscale=i == len(heads),
                customdata=counts.astype(int), text=np.round(100 * share).astype(int) if small else None,
                texttemplate="%{text}" if small else None,
                hovertemplate="true %{y}, predicted %{x}: %{customdata} images (%{z:.1%} of the row)<extra>"
                + head + "</extra>",
                colorbar={"title": "share", "tickformat": ".0%"},
            ),
            row=1, col=i,
        )
        fig.update_yaxes(autorange="reversed", showticklabels=i == 1, row=1, col=i)
        fig.update_xaxes(tickangle=-45, row=1, col=i)
    return _compact(fig, 420, legend=False)


def per_class_accuracy(frame: pd.DataFrame) -> go.Figure:
    """Grouped bars: accuracy per true class (rows of ``frame``: class, head, accuracy)."""
    fig = go.Figure()
    for head, part in frame.groupby("head", sort=False):
        fig.add_trace(go.Bar(x=part["class"], y=part["accuracy"], name=head, marker_color=HEAD_COLORS.get(head, "#888"),
                             hovertemplate="%{x}: %{y:.1%}<extra>" + head + "</extra>"))
    low = float(np.nanmin(frame["accuracy"])) if len(frame) else 0.0
    fig.update_layout(barmode="group", yaxis={"tickformat": ".0%", "range": [max(0.0, low - 0.05), 1.0]})
    return _compact(fig, 320)


def reliability_diagrams(bins: Mapping[str, Mapping[str, list]], ece: Mapping[str, float]) -> go.Figure:
    """One reliability diagram per head: accuracy per confidence bin against the diagonal of perfect calibration.

    ``bins[head]`` holds the bins' ``edges``, ``count``, ``confidence`` and ``accuracy`` (None for an empty bin).
    """
    heads = list(bins)
    titles = [f"{h}: ECE {ece[h]:.2%}" for h in heads]
    fig = make_subplots(rows=1, cols=len(heads), subplot_titles=titles, horizontal_spacing=0.06)
    for i, head in enumerate(heads, start=1):
        b = bins[head]
        edges = np.asarray(b["edges"])
        centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
        accuracy = [np.nan if a is None else a for a in b["accuracy"]]
        confidence = [np.nan if c is None else c for c in b["confidence"]]
        fig.add_trace(go.Bar(x=centres, y=accuracy, width=width * 0.95, marker_color=HEAD_COLORS.get(head, "#888"),
                             name="accuracy", customdata=np.stack([b["count"], confidence], axis=1),
                             hovertemplate="confidence %{customdata[1]:.3f}: accuracy %{y:.1%}, "
                             "%{customdata[0]} images<extra>" + head + "</extra>"), row=1, col=i)
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#888"},
                                 name="perfect calibration", hoverinfo="skip", showlegend=i == 1), row=1, col=i)
        fig.update_xaxes(range=[0, 1], title_text="confidence (top-1 probability)", row=1, col=i)
        fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="accuracy" if i == 1 else None, row=1, col=i)
    return _compact(fig, 340, legend=False)


def confidence_histograms(confidence: Mapping[str, Sequence[int]], entropy: Mapping[str, Sequence[int]],
                          max_entropy: float) -> go.Figure:
    """Two panels: how many images each head gives each confidence, and each entropy (log-scaled counts)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["confidence (top-1 probability)", "entropy (nats)"])
    for col, (hists, top) in enumerate(((confidence, 1.0), (entropy, max_entropy)), start=1):
        for head, counts in hists.items():
            edges = np.linspace(0.0, top, len(counts) + 1)
            fig.add_trace(go.Scatter(x=(edges[:-1] + edges[1:]) / 2, y=list(counts), mode="lines+markers", name=head,
                                     line={"color": HEAD_COLORS.get(head, "#888"), "shape": "hvh"},
                                     showlegend=col == 1,
                                     hovertemplate="%{x:.3f}: %{y} images<extra>" + head + "</extra>"),
                          row=1, col=col)
        # One tick per decade: plotly's default also labels 2 and 5 within each ("1000 5 2 100"), which reads as noise.
        fig.update_yaxes(type="log", dtick=1, title_text="images" if col == 1 else None, row=1, col=col)
    return _compact(fig, 300)


def right_wrong_bars(table: pd.DataFrame) -> go.Figure:
    """Per auxiliary head: the share it gets right where main is wrong, and wrong where main is right."""
    aux = table[table["head"] != "main"]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=aux["head"], y=aux["right_where_main_wrong"], name="right where main is wrong",
                         marker_color="#54A24B", hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.add_trace(go.Bar(x=aux["head"], y=aux["wrong_where_main_right"], name="wrong where main is right",
                         marker_color="#E45756", hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.update_layout(barmode="group", yaxis={"tickformat": ".1%", "title": "share of the images"})
    return _compact(fig, 300)


def early_exit_curve(points: pd.DataFrame, refs: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """Accuracy against mean cost (share of main-only's multiply-adds), one point per threshold.

    ``points`` has columns threshold, accuracy, relative_cost and the exit shares; ``refs`` maps
    main, aux1 and aux2 to their "only" point, a dict with ``accuracy`` and ``relative_cost``.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=points["relative_cost"], y=points["accuracy"], mode="lines+markers", name="cascade aux1 → aux2 → main",
        line={"color": "#4C78A8"},
        customdata=points[["threshold", "exit_aux1", "exit_aux2", "exit_main"]].to_numpy(),
        hovertemplate="t = %{customdata[0]}: accuracy %{y:.2%} at %{x:.1%} of main's cost<br>"
        "leaving at aux1 %{customdata[1]:.1%}, aux2 %{customdata[2]:.1%}, main %{customdata[3]:.1%}<extra></extra>",
    ))
    symbols = {"main": "star", "aux1": "diamond", "aux2": "square"}
    for head, ref in refs.items():
        name, symbol, color = f"{head} only", symbols[head], HEAD_COLORS[head]
        fig.add_trace(go.Scatter(x=[ref["relative_cost"]], y=[ref["accuracy"]], mode="markers+text", name=name,
                                 text=[name], textposition="bottom center",
                                 marker={"symbol": symbol, "size": 14, "color": color},
                                 hovertemplate=name + ": accuracy %{y:.2%} at %{x:.1%} of main's cost<extra></extra>"))
    fig.update_layout(xaxis={"title": "mean multiply-adds per image, share of main only", "tickformat": ".0%"},
                      yaxis={"title": "accuracy", "tickformat": ".2%"})
    return _compact(fig, 380)


def probe_curve(curve: Mapping) -> go.Figure:
    """A linear probe's held-out accuracy at each depth (a line, stem to inception5b), and each trained head's
    accuracy as a marker at the point it reads (``curve`` is :meth:`gnet.heads.readout.ProbeCurve.to_dict`)."""
    probes = pd.DataFrame(curve["probes"])
    x = [_short_stage(p) for p in probes["point"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=x, y=probes["accuracy"], mode="lines+markers", name="linear probe (held out)", line={"color": "#7f7f7f"},
        customdata=probes[["log_loss", "train_accuracy"]].to_numpy(),
        hovertemplate="probe at %{x}: %{y:.2%} held out, log-loss %{customdata[0]:.3f}, "
        "%{customdata[1]:.2%} on the images it was fitted on<extra></extra>",
    ))
    for head, found in curve["heads"].items():
        fig.add_trace(go.Scatter(
            x=[_short_stage(found["point"])], y=[found["accuracy"]], mode="markers+text", name=f"{head} (trained head)",
            text=[head], textposition="top center", marker={"symbol": "diamond", "size": 14, "color": HEAD_COLORS[head]},
            hovertemplate=f"{head}, reading %{{x}}: %{{y:.2%}} on the same images<extra></extra>",
        ))
    fig.update_layout(xaxis={"title": "depth (where the probe reads the pooled features)", "type": "category"},
                      yaxis={"title": "held-out accuracy", "tickformat": ".0%"})
    return _compact(fig, 380)
