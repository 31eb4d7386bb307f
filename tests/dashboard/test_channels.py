"""The Channels page (AppTest, no browser) and its pure tables and charts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.figures import channels as channel_charts
from dashboard.figures import charts
from dashboard.figures import tables
from gnet.data.samples import sample_images
from gnet.inspect.ablation import ablate
from gnet.net.layers import HEADS
from tests.conftest import make_loaded

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT_S = 600  # a cold model load and visualizations on a slow shared CPU


def _channels() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("routes/channels.py").run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _knockouts(at: AppTest) -> pd.DataFrame:
    """The knock-out table (the families table may come first, when its module's families are cached)."""
    return next(d.value for d in at.dataframe if "total_variation" in d.value.columns)


def _images(spec: dict) -> int:
    return sum(1 for trace in spec["data"] if trace["type"] == "image")


def test_the_page_shows_a_channel_its_examples_and_what_each_branch_is_worth(app_weights):
    at = _channels()
    _ok(at)
    assert [t.value for t in at.title] == ["Channels"]
    assert at.subheader[0].value == "What inception3a.1x1:0 looks for"
    specs = _specs(at)
    grids = [s for s in specs if _images(s) == 9]
    assert len(grids) == 1, "nine dataset examples in one grid"
    assert len(grids[0]["layout"]["shapes"]) == 9, "each example marks where the channel peaks"
    heatmaps = [s for s in specs if sum(t["type"] == "heatmap" for t in s["data"]) == 3]
    assert heatmaps, "one importance heatmap per head"
    assert any(a.value.startswith("Press **Visualize**") for a in at.info)


def test_visualize_knock_out_and_type_a_channel(app_weights):
    at = _channels()
    at.select_slider(key="channels_steps").set_value(32).run()
    at.button(key="channels_visualize").click().run()
    _ok(at)
    assert any(_images(s) == 1 for s in _specs(at)), "the channel's visualization"

    before = _knockouts(at)
    for branch in ("1x1", "3x3", "5x5", "pool_proj"):
        at.toggle(key=f"knockout_branch-inception3a-{branch}").set_value(True)
    at.run()
    _ok(at)  # knocking out a whole module is shown, not an error
    assert any("All four branches are off" in w.value for w in at.warning)
    after = _knockouts(at)
    assert (after["total_variation"] > 0).all() and (before["total_variation"] == 0).all()
    table = next(d for d in at.dataframe if "total_variation" in d.value.columns)
    labels = {name: c.get("label") for name, c in json.loads(table.proto.columns).items()}
    assert (labels["top1_intact"], labels["top1_knocked_out"]) == ("top-1 intact", "top-1 knocked out")

    at.text_input(key="channels_jump").input("inception4c.5x5:99").run()
    assert [e.value for e in at.error] == ["Channel 99 is out of range: inception4c.5x5 has channels 0 to 63."]
    at.text_input(key="channels_jump").input("inception4c.5x5:12").run()
    _ok(at)
    assert at.subheader[0].value == "What inception4c.5x5:12 looks for"


def test_class_visualizations_for_the_three_heads(app_weights):
    at = _channels()
    at.select_slider(key="channels_steps").set_value(32).run()
    at.button(key="class_vis_run").click().run()
    _ok(at)
    threes = [s for s in _specs(at) if _images(s) == 3]
    assert threes and [a["text"].split(":")[0] for a in threes[0]["layout"]["annotations"]] == list(HEADS)


def test_the_branches_page_opens_a_channel_here(app_weights):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("routes/branches.py").run()
    at.selectbox(key="branches_module").set_value("inception4b").run()
    at.selectbox(key="branches_focus_branch").set_value("5x5").run()
    at.selectbox(key="branches_focus_channel-inception4b-5x5").set_value(3).run()
    at.button(key="channels_open").click().run()
    _ok(at)
    assert [t.value for t in at.title] == ["Channels"]
    assert at.subheader[0].value == "What inception4b.5x5:3 looks for"


def test_without_fashion_mnist_the_page_says_so(app_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_data.clear()  # the examples and their pictures, kept by earlier tests in this process
    st.cache_resource.clear()
    at = _channels()
    assert not at.exception
    assert any("Fashion-MNIST not found" in w.value for w in at.warning)


# ---------------------------------------------------------------- pure parts


def test_knockout_tables_show_the_change_per_head():
    loaded = make_loaded()
    image = sample_images()[0].path
    intact, knocked = ablate(loaded, image), ablate(loaded, image, ["inception4c.3x3"])
    changes = tables.knockout_changes(intact, knocked)
    assert list(changes["head"]) == list(HEADS)
    assert changes.set_index("head").loc["aux1", "total_variation"] == 0
    top = tables.knockout_top(intact, knocked)
    assert set(top["head"]) == set(HEADS) and (top.groupby("head").size() >= 5).all()
    fig = channel_charts.knockout_bars(top, ["aux2"])
    assert len(fig.data) == 6 and "aux2 (untrained)" in [a.text for a in fig.layout.annotations]
    # A probability of ~0 is drawn as a sliver, so that plotly draws its label; hover gives the true value.
    tiny = pd.DataFrame([{"head": "aux2", "label": "Bag", "intact": 1e-6, "knocked_out": 0.104}])
    bars = channel_charts.knockout_bars(tiny).data
    assert bars[0].x[0] == charts.SLIVER and bars[0].text[0] == "0.0%" and bars[0].customdata[0] == 1e-6
    assert bars[1].x[0] == pytest.approx(0.104) and bars[1].text[0] == "10.4%"


def test_importance_grid_blanks_modules_a_head_does_not_read_and_joins_the_cost():
    frame = pd.DataFrame(
        [{"module": m, "branch": b, "head": h, "accuracy": 0.8, "intact_accuracy": 0.9, "drop": 0.1}
         for m in ("inception4a", "inception4e") for b in ("1x1", "3x3", "5x5", "pool_proj") for h in HEADS]
    )
    grid = tables.importance_grid(frame)
    late_aux1 = grid[(grid["module"] == "inception4e") & (grid["head"] == "aux1")]
    assert late_aux1["drop_pp"].isna().all() and not late_aux1["reads"].any()
    assert grid[grid["head"] == "main"]["drop_pp"].tolist() == pytest.approx([10.0] * 8)
    cost = pd.DataFrame([{"module": "inception4a", "branch": b, "flops": 10 * (i + 1), "params": i}
                         for i, b in enumerate(("1x1", "3x3", "5x5", "pool_proj"))])
    joined = tables.importance_vs_cost(grid, cost, "aux1")
    assert list(joined["module"]) == ["inception4a"] * 4 and list(joined["flops"]) == [10, 20, 30, 40]
    fig = channel_charts.importance_heatmaps(grid)
    assert len(fig.data) == 3 and np.isnan(np.asarray(fig.data[1].z, dtype=float)[1]).all()
    assert len(channel_charts.importance_vs_cost(joined, "aux1").data) == 4
    # A knock-out that gains a few images reads 0.0, not -0.0, and a real gain keeps its sign.
    grid.loc[grid["head"] == "main", "drop_pp"] = [-0.04, -0.06, 0.04, 2.0, 0.0, -0.0, -1.25, 7.0]
    text = channel_charts.importance_heatmaps(grid).data[0].text
    assert [list(row) for row in text] == [["0.0", "-0.1", "0.0", "2.0"], ["0.0", "0.0", "-1.2", "7.0"]]


def test_importance_vs_cost_puts_a_name_beside_its_point_when_another_named_point_sits_just_above():
    # The bundled net's main head at 64 px: 4c.1x1 (2.2 points) and 3b.pool_proj (1.4) at ~2.1 MFLOPs.
    frame = pd.DataFrame([
        {"module": "inception4c", "branch": "1x1", "flops": 2.10e6, "params": 1, "drop_pp": 2.2},
        {"module": "inception3b", "branch": "pool_proj", "flops": 2.12e6, "params": 1, "drop_pp": 1.4},
        {"module": "inception3b", "branch": "pool_proj", "flops": 2.14e6, "params": 1, "drop_pp": 0.3},  # unnamed
        {"module": "inception3a", "branch": "3x3", "flops": 1.6e7, "params": 1, "drop_pp": 15.0},
        {"module": "inception4a", "branch": "5x5", "flops": 1.0e6, "params": 1, "drop_pp": 1.5},  # far to the left
    ])
    fig = channel_charts.importance_vs_cost(frame, "main")
    placed = {t.name: list(zip(t.text, t.textposition)) for t in fig.data}
    assert placed["1x1"] == [("4c", "top center")]
    assert placed["pool_proj"] == [("3b", "middle right"), ("", "top center")]
    assert placed["3x3"] == [("3a", "top center")] and placed["5x5"] == [("4a", "top center")]


def test_branch_cost_sums_each_branch():
    rows = pd.DataFrame([
        {"module": "inception3a", "branch": "3x3", "flops": 5, "params": 1},
        {"module": "inception3a", "branch": "3x3", "flops": 7, "params": 2},
        {"module": "stem", "branch": "", "flops": 100, "params": 9},
    ])
    assert tables.branch_cost(rows).to_dict(orient="records") == [
        {"module": "inception3a", "branch": "3x3", "flops": 12, "params": 3}
    ]


def test_picture_grid_marks_boxes():
    pictures = [np.zeros((8, 8, 3)) for _ in range(4)]
    fig = channel_charts.picture_grid(pictures, list("abcd"), [(0, 0, 4, 4), (4, 4, 8, 8)], columns=2)
    assert len(fig.data) == 4 and len(fig.layout.shapes) == 2
    assert fig.layout.shapes[1].x0 == 3.5 and fig.layout.shapes[1].y1 == 7.5
