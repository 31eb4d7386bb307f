"""The heads-over-a-set figure builders on plain data: the linear-probe curve."""

from __future__ import annotations

from dashboard.figures import heads as headcharts


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
