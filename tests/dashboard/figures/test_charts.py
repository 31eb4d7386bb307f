"""dashboard.figures.charts and dashboard.figures.tables, on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures import charts, tables
from gnet.net.cost import flops, to_frame
from gnet.net.layers import point
from gnet.net.model import googlenet

HEADS = ("main", "aux1", "aux2")


@pytest.fixture(scope="module")
def cost_rows() -> pd.DataFrame:
    """gnet.flops of the ImageNet layout at 64 px, shaped like dashboard.cache.cost.cost_table."""
    frame = to_frame(flops(googlenet(num_classes=10), 64))
    frame["out_shape"] = frame["out_shape"].map(lambda s: " x ".join(map(str, s)))
    return frame


def test_top_k_bars_one_panel_per_head_and_marks_untrained():
    tops = {h: [("cat", 0.6), ("dog", 0.3), ("car", 0.1)] for h in HEADS}
    tops["aux2"] = [("dog", 0.5), ("cat", 0.45), ("car", 0.05)]
    fig = charts.top_k_bars(tops, untrained=["aux1"])
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == list(HEADS)
    assert list(fig.data[0].y) == ["car", "dog", "cat"]  # most likely on top
    assert list(fig.data[0].x) == [0.1, 0.3, 0.6] and list(fig.data[0].text) == ["10.0%", "30.0%", "60.0%"]
    assert list(fig.data[2].y) == ["car", "cat", "dog"]  # each head keeps its own order
    assert [fig.layout[f"xaxis{i}"].range for i in ("", "2", "3")] == [(0, 1)] * 3  # probabilities share a scale
    titles = [a.text for a in fig.layout.annotations]
    assert "aux1 (untrained)" in titles and "main" in titles


def test_probability_bars_label_every_bar_level_and_draw_a_zero_as_a_sliver():
    # A confident head's tail (~1e-5 rounds to 0 px: plotly then drew no "0.0%"), and a 9% bar whose label
    # plotly's "auto" had stood on end inside it.
    fig = charts.top_k_bars({"main": [("Ankle boot", 0.9), ("Sneaker", 0.09), ("Bag", 1e-5)]})
    bar = fig.data[0]
    assert list(bar.y) == ["Bag", "Sneaker", "Ankle boot"] and list(bar.text) == ["0.0%", "9.0%", "90.0%"]
    assert list(bar.x) == [charts.SLIVER, 0.09, 0.9] and list(bar.customdata) == [1e-5, 0.09, 0.9]
    assert list(bar.textposition) == ["outside", "outside", "inside"] and bar.textangle == 0
    assert "%{customdata:.2%}" in bar.hovertemplate  # hover gives the probability, not the drawn width


def test_head_metrics_and_agreement():
    summary = pd.DataFrame({"head": HEADS, "entropy_nats": [0.1, 0.5, 0.9], "kl_to_main_nats": [0.0, 0.2, 0.4]})
    assert len(charts.head_metrics(summary).data) == 2
    batch = pd.DataFrame(
        {
            "true_label": ["a", "b", None, "b"],
            "main_label": ["a", "b", "c", "a"],
            "aux1_label": ["a", "a", "c", "a"],
            "aux2_label": ["b", "b", "c", "b"],
        }
    )
    matrix = tables.agreement_matrix(batch)
    assert matrix.loc["main", "main"] == 1.0
    assert matrix.loc["main", "aux1"] == pytest.approx(0.75)
    assert matrix.loc["aux1", "aux2"] == pytest.approx(0.25)
    accuracy = tables.head_accuracy(batch).set_index("head")["accuracy"]
    assert accuracy["main"] == pytest.approx(2 / 3) and accuracy["aux2"] == pytest.approx(2 / 3)
    fig = charts.agreement_heatmap(matrix)
    assert fig.data[0].z.shape == (3, 3)


def test_stage_summary_and_diagram(cost_rows):
    stages = tables.stage_summary(cost_rows)
    assert list(stages["stage"][:3]) == ["stem", "inception3a", "inception3b"]
    assert {"aux1", "aux2", "maxpool3", "maxpool4", "avgpool", "classifier"} <= set(stages["stage"])
    assert sum(stages["stage"].str.startswith("inception")) == 9
    by = stages.set_index("stage")
    assert by.loc["inception3a", "out_shape"] == "256 x 8 x 8"  # 64 px: the stem divides by 8
    assert by.loc["inception5b", "out_shape"].startswith("1024 x")
    assert stages["flops"].sum() == cost_rows["flops"].sum()
    assert stages["params"].sum() == cost_rows["params"].sum()
    fig = charts.stage_diagram(stages)
    assert len(fig.layout.shapes) == len(stages)
    labels = " ".join(a.text for a in fig.layout.annotations)
    assert "3a" in labels and "aux1" in labels and "8x8x256" in labels


def test_cost_charts(cost_rows):
    bars = charts.cost_by_layer(cost_rows, "flops")
    assert sum(len(t.x) for t in bars.data) == int((cost_rows["flops"] > 0).sum())
    # One colour per module, none shared (the stem and inception5a once both took a 10-colour palette's first).
    colors = {t.name: t.marker.color for t in bars.data}
    assert len(colors) == 13 and len(set(colors.values())) == 13
    assert colors == {m: charts.MODULE_COLORS[m] for m in colors}
    tree = charts.cost_treemap(cost_rows, "params")
    assert tree.data[0].type == "treemap"
    assert "inception4e" in set(tree.data[0].labels)
    # The treemap colours each module as the bars do, and its root grey.
    node_colors = dict(zip(tree.data[0].ids, tree.data[0].marker.colors))
    assert node_colors["GoogLeNet/inception5a"] == charts.MODULE_COLORS["inception5a"]
    assert node_colors["GoogLeNet"] == "lightgrey"


def test_paper_vs_computed():
    table = pd.DataFrame({
        "name": ["conv1", "maxpool1", "inception3a"], "ops_m": [34, np.nan, 128],
        "ops_m_paper_layout": [118, np.nan, 128.05], "ops_m_torchvision": [118, np.nan, 121.6],
    })
    fig = charts.paper_vs_computed(table)
    assert [list(t.x) for t in fig.data] == [["conv1", "inception3a"]] * 3  # the pooling row has no ops
    assert [t.name for t in fig.data] == ["Table 1 (paper)", "paper's layout, built here", "torchvision's layout"]
    assert [list(t.y) for t in fig.data] == [[34, 128], [118, 128.05], [118, 121.6]]


def test_feature_maps_and_overlay():
    maps = np.random.default_rng(0).random((8, 7, 7)).astype(np.float32)
    channels = [5, 1, 9, 2, 0, 3, 4, 6]
    grid = charts.feature_grid(maps, channels)
    (heat,) = grid.data  # one tiled heatmap
    z, which = np.asarray(heat.z, dtype=float), np.asarray(heat.customdata)
    # 2 rows x 4 columns of 7 x 7 maps: one blank column between maps, two blank rows (room for titles)
    assert z.shape == (2 * 9 - 2, 4 * 8 - 1)
    np.testing.assert_allclose(z[:7, :7], maps[0])
    np.testing.assert_allclose(z[9:16, 24:31], maps[7])
    assert (which[:7, :7] == 5).all() and (which[9:16, 24:31] == 6).all() and np.isnan(z[7:9]).all()
    assert [a.text for a in grid.layout.annotations] == [f"ch {c}" for c in channels]
    assert grid.layout.annotations[4].y == 9 - 0.5  # the second row's first title: on its map's top edge
    wide = charts.feature_grid(np.zeros((8, 28, 28), np.float32), channels)  # 224 px: a wider gap
    assert np.asarray(wide.data[0].z, dtype=float).shape == (2 * 33 - 5, 4 * 29 - 1)
    assert charts.channel_map(maps[0], "x").data[0].z.shape == (7, 7)
    image = np.zeros((56, 56, 3), dtype=np.float32)
    fig = charts.overlay(image, maps[0], "mean", height=420)
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    assert fig.layout.height == 420
    assert fig.data[1].dx == pytest.approx(8.0)  # a 7 x 7 map stretched over 56 px
    assert (fig.data[1].zmin, fig.data[1].zmax) == (0.0, pytest.approx(maps[0].max()))
    # An empty map (a Grad-CAM with no positive position) sits at the scale's see-through end, not its middle.
    blank = charts.overlay(image, np.zeros((4, 4), np.float32)).data[1]
    assert blank.zmin == 0.0 and blank.zmax > 0.0 and charts._OVERLAY_SCALE[0][1] == "rgba(0, 0, 0, 0.0)"
    # The app's scale is gnet's stops, so `gnet attribute --out` draws a map in the same colours.
    from gnet.inspect.drawing import OVERLAY_STOPS

    assert [level for level, _ in charts._OVERLAY_SCALE] == [level for level, _, _ in OVERLAY_STOPS]
    assert charts._OVERLAY_SCALE[-1][1] == "rgba({}, {}, {}, {})".format(*OVERLAY_STOPS[-1][1], OVERLAY_STOPS[-1][2])


def test_energy_shares():
    values = {"1x1": 0.4, "3x3": 0.3, "5x5": 0.2, "pool_proj": 0.1}
    shares = pd.DataFrame(
        [{"module": m, "branch": b, "energy_share": v} for m in ("inception3a", "inception3b") for b, v in values.items()]
    )
    fig = charts.energy_shares(shares)
    assert [t.name for t in fig.data] == list(values)  # one stacked bar per branch, in concatenation order
    for trace in fig.data:
        assert list(trace.x) == ["inception3a", "inception3b"] and list(trace.y) == [values[trace.name]] * 2
        assert trace.marker.color == charts.BRANCH_COLORS[trace.name]
    assert fig.layout.barmode == "relative" and fig.layout.yaxis.range == (0, 1)


def _norms(series: str, loss: str, values: list[float]) -> pd.DataFrame:
    layers = [point(n) for n in ("conv1.conv", "inception3a.1x1.conv", "aux1.fc2", "fc")]
    return pd.DataFrame(
        [{"series": series, "loss": loss, "layer": p.name, "depth": i, "kind": p.kind, "module": p.module, "norm": v}
         for i, (p, v) in enumerate(zip(layers, values))]
    )


def test_gradient_depth_one_line_per_series_and_loss_on_a_log_scale():
    frame = pd.concat([
        _norms("no BN", "main", [1e-11, 1e-6, 0.0, 1.0]),  # the main loss does not reach aux1
        _norms("no BN", "combined", [1e-7, 1e-5, 0.5, 1.0]),
        _norms("BN", "main", [0.3, 0.5, 0.0, 1.0]),
    ])
    fig = charts.gradient_depth(frame, value="norm", title="weight gradient")
    assert fig.layout.yaxis.type == "log"
    lines = [t for t in fig.data if t.showlegend is not False]
    assert sorted(t.name for t in lines) == ["BN · main", "no BN · combined", "no BN · main"]
    assert all(len(t.x) == 3 for t in lines)  # the main path; the aux layer is drawn apart
    crosses = [t for t in fig.data if t.mode == "markers"]
    assert [list(t.customdata) for t in crosses] == [["aux1.fc2"]]  # zeros are left out
    main, combined = (next(t for t in lines if t.name == f"no BN · {loss}") for loss in ("main", "combined"))
    assert main.line.color == combined.line.color and main.line.dash != combined.line.dash
    assert list(fig.layout.xaxis.ticktext) == ["stem", "3a", "fc"]


def test_aux_ratio_lines_have_a_rule_at_one():
    ratios = _norms("no BN", "", [1e4, 10.0, 1.0, 1.0]).rename(columns={"norm": "ratio"})
    ratios = ratios[ratios["kind"] != "aux"]
    fig = charts.aux_ratio_lines(ratios, value="ratio")
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["no BN"]
    assert [(s.y0, s.y1) for s in fig.layout.shapes] == [(1, 1)]
    assert fig.layout.yaxis.dtick == 1  # 4 decades: one tick each, not "10⁴ 5 2 10³ 5 2 ..."


def test_log_axes_tick_each_decade_only_over_several():
    narrow = _norms("BN", "", [1.07, 1.01, 1.0, 0.95]).rename(columns={"norm": "ratio"})
    assert charts.aux_ratio_lines(narrow, value="ratio").layout.yaxis.dtick is None  # plotly's 0.95, 1, 1.05
    frame = pd.concat([_norms("no BN", "main", [1e-12, 1e-6, 0.0, 1e2]), _norms("BN", "main", [1e-3, 1e-2, 0.0, 1.0])])
    assert charts.gradient_depth(frame, value="norm", title="g").layout.yaxis.dtick is None  # 14 decades: plotly's
    assert charts.gradient_depth(frame[frame["series"] == "BN"], value="norm", title="g").layout.yaxis.dtick == 1


def test_gradient_heatmap_layers_by_steps_in_log10():
    norms = pd.DataFrame(
        [{"step": s, "layer": n, "depth": d, "norm": v}
         for s in (10, 20) for d, (n, v) in enumerate([("conv1", 1e-12), ("aux1.fc2", 0.0), ("fc", 0.1)])]
    )
    fig = charts.gradient_heatmap(norms)
    heat = fig.data[0]
    assert list(heat.y) == ["conv1", "aux1.fc2", "fc"] and list(heat.x) == [10, 20]
    z = np.asarray(heat.z, dtype=float)
    assert z[0, 0] == pytest.approx(-12) and z[2, 1] == pytest.approx(-1)
    assert np.isnan(z[1]).all()  # no gradient: blank, not log(0)
    assert (heat.zmin, heat.zmax) == (-12, -1)
    assert charts.gradient_heatmap(norms, log_range=(-15, 1)).data[0].zmin == -15  # shared scale across runs


def test_loss_curves_one_panel_per_head_one_colour_per_run():
    losses = pd.DataFrame(
        [{"run": r, "step": s, "head": h, "loss": 2.3 - s / 100}
         for r in ("a", "b") for s in (10, 20) for h in ("main", "aux1", "aux2", "total")]
    )
    fig = charts.loss_curves(losses)
    assert len(fig.data) == 8
    assert [a.text for a in fig.layout.annotations] == ["main", "aux1", "aux2", "total"]
    assert sum(bool(t.showlegend) for t in fig.data) == 2


@pytest.mark.parametrize(
    ("kernel", "direct", "with_bottleneck", "ratio"),
    [
        # inception3a at 224 px: 192 channels in, 16 after the 1x1 reduce, 32 out, 28 x 28 maps.
        (5, 25 * 192 * 32 * 28 * 28, 192 * 16 * 28 * 28 + 25 * 16 * 32 * 28 * 28, 9.68),
        (3, 9 * 192 * 32 * 28 * 28, 192 * 16 * 28 * 28 + 9 * 16 * 32 * 28 * 28, 7.2),
    ],
)
def test_bottleneck_cost_counts_the_reduction_too(kernel, direct, with_bottleneck, ratio):
    saving = tables.bottleneck_cost(flops(googlenet(branch5x5_kernel=kernel), 224), kernel)
    assert (saving.in_channels, saving.reduce_channels, saving.out_channels) == (192, 16, 32)
    assert (saving.height, saving.width) == (28, 28)
    assert saving.direct_macs == direct and saving.reduce_macs + saving.conv_macs == with_bottleneck
    assert saving.ratio == pytest.approx(ratio, abs=0.01)
    assert saving.ratio < saving.in_channels / saving.reduce_channels  # not the 12x of the channel counts


def test_bottleneck_ratio_does_not_depend_on_the_input_size():
    small = tables.bottleneck_cost(flops(googlenet(branch5x5_kernel=5), 64), 5)
    assert (small.height, small.width) == (8, 8) and small.ratio == pytest.approx(300 / 31)


def test_preprocessing_in_words():
    trained = {
        "grayscale": True, "resize": 64, "mean": [0.286] * 3, "std": [0.353] * 3,
        "channels": "gray repeated to 3", "invert": "auto: photos whose border is lighter are inverted",
    }
    text = tables.describe_preprocessing(trained)
    assert text == (
        "grayscale, resize 64, mean 0.286 / std 0.353, channels: gray repeated to 3, "
        "invert auto: photos whose border is lighter are inverted"
    )
    assert tables.describe_preprocessing({"mean": [0.5, 0.4, 0.3], "std": [0.2], "invert": "none"}) == (
        "mean (0.5, 0.4, 0.3) / std 0.2"
    )
    imagenet = "resize 256, centre crop 224, ImageNet mean/std"
    assert tables.describe_preprocessing(imagenet) == imagenet


