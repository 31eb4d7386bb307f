"""The heads-over-a-set figure builders on plain data: the linear-probe curve, the confidence histograms,
the early-exit curve and its summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

import gnet
from dashboard.figures import heads as headcharts
from dashboard.figures.tables import exit_summary
from gnet.heads.early_exit import early_exits, exit_costs
from gnet.heads.logits import HeadLogitSet


def _curve(heads: dict) -> dict:
    points = ["conv1", "maxpool2", "inception4a", "inception4d", "inception5b"]
    return {
        "probes": [{"point": p, "accuracy": 0.5 + 0.1 * i, "log_loss": 1.0 - 0.1 * i, "train_accuracy": 0.55 + 0.1 * i}
                   for i, p in enumerate(points)],
        "heads": heads,
    }


def test_the_probe_line_runs_in_depth_order_and_each_head_sits_at_its_point():
    heads = {"main": {"point": "inception5b", "accuracy": 0.93}, "aux1": {"point": "inception4a", "accuracy": 0.61}}
    fig = headcharts.probe_curve(_curve(heads))
    line, *marks = fig.data
    assert list(line.x) == ["conv1", "maxpool2", "4a", "4d", "5b"]
    assert list(line.y) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert [(m.name, list(m.x), list(m.y)) for m in marks] == [
        ("main (trained head)", ["5b"], [0.93]), ("aux1 (trained head)", ["4a"], [0.61])
    ]
    assert marks[0].marker.color != marks[1].marker.color


def test_without_heads_only_the_probe_line_is_drawn():
    assert len(headcharts.probe_curve(_curve({})).data) == 1


def test_confidence_histograms_have_one_tick_per_decade_of_images():
    counts = {"main": [0, 3, 40, 900], "aux1": [1, 5, 60, 800]}
    fig = headcharts.confidence_histograms(counts, counts, 2.3)
    assert [t.name for t in fig.data] == ["main", "aux1", "main", "aux1"]
    assert (fig.layout.yaxis.type, fig.layout.yaxis.dtick) == ("log", 1)
    assert (fig.layout.yaxis2.type, fig.layout.yaxis2.dtick) == ("log", 1)


def _exit_curve(aux2_shift: float, n: int = 2_000):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    main = rng.normal(0, 1, (n, 10)).astype(np.float32)
    main[np.arange(n), labels] += 3.0
    aux2 = main.copy()
    aux2[np.arange(n), labels] -= aux2_shift  # 0: aux2 is main exactly
    logits = HeadLogitSet("hand-made", [f"c{i}" for i in range(10)], labels,
                          {"main": main, "aux1": main - 1.0, "aux2": aux2}, "computed")
    return early_exits(logits, exit_costs(gnet.flops(gnet.googlenet(num_classes=10), 64), 64))


def test_the_exit_summary_says_whether_cutting_at_4d_loses_more_than_chance():
    same = exit_summary(_exit_curve(0.0))
    assert "Cut at inception4d, the net scores 0.00 points above main: within the ±" in same
    assert "2,000 labelled images leave to chance" in same
    worse = _exit_curve(2.0)
    gap = (worse.main_only.accuracy - worse.aux2_only.accuracy) * 100
    assert gap > 5 and f"scores {gap:.2f} points below main: beyond the ±" in exit_summary(worse)


def test_the_early_exit_chart_marks_each_head_alone():
    curve = _exit_curve(0.0)
    refs = {h: {"accuracy": p.accuracy, "relative_cost": p.relative_cost(curve.costs)}
            for h, p in curve.references.items()}
    fig = headcharts.early_exit_curve(pd.DataFrame(curve.table()), refs)
    marks = {t.name: (t.x[0], t.y[0]) for t in fig.data[1:]}
    assert list(marks) == ["main only", "aux1 only", "aux2 only"]
    assert marks["aux2 only"] == (curve.costs.aux2_only / curve.costs.main_only, curve.main_only.accuracy)
    assert marks["aux1 only"][0] < marks["aux2 only"][0] < marks["main only"][0] == 1.0
