"""The Channels page's circuits (AppTest, no browser) and their figures."""

from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from dashboard.figures import circuits as figures
from tests.dashboard.test_channels import APP, TIMEOUT_S, _ok


def _on(target: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("routes/channels.py").run()
    at.text_input(key="channels_jump").input(target).run()
    return at


def _texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_the_strips_name_both_sides_and_a_click_opens_the_channel_below(app_weights):
    at = _on("inception4a.3x3:12")
    _ok(at)
    texts = _texts(at)
    assert "**Built from: channels of inception3b**" in texts and "**Feeds: channels of inception4b**" in texts
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    strips = [s for s in specs if len(s["data"]) > 1 and all(t["type"] == "heatmap" and t.get("zmid") == 0 for t in s["data"])]
    assert len(strips) >= 3 and all(len(s["data"]) == 6 for s in strips)  # 6 channels each way by default
    first = at.button(key="circuit_open-upstream-excite-0")
    label = first.label
    first.click().run()
    _ok(at)
    branch, channel = label.split(":")
    assert at.selectbox(key="channels_module").value == "inception3b"
    assert at.selectbox(key="channels_branch").value == branch
    assert at.subheader[0].value == f"What inception3b.{label} looks for"
    assert "**Built from: channels of inception3a**" in _texts(at)


def test_the_first_module_says_where_circuits_start_and_ranking_by_the_image_adds_up(app_weights):
    at = _on("inception3a.5x5:1")
    _ok(at)
    assert any("circuits start at inception3b" in i.value for i in at.info)
    at.text_input(key="channels_jump").input("inception3b.1x1:7").run()
    at.radio(key="circuit_rank").set_value("image").run()
    _ok(at)
    assert any("Integrated gradients split the difference" in c.value for c in at.caption)


def test_the_connection_strip_shares_one_signed_range_and_shows_pictures_above():
    kernels = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.full((2, 2), -0.25)]
    fig = figures.connection_strip(["a", "b"], kernels)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 and len(fig.data) == 2
    assert all(h.zmin == -2.0 and h.zmax == 2.0 and h.zmid == 0 for h in heatmaps)
    np.testing.assert_array_equal(heatmaps[0].z, kernels[0][::-1])  # row 0 drawn on top
    low, high = (tuple(int(v) for v in c[1][4:-1].split(",")) for c in (heatmaps[0].colorscale[0], heatmaps[0].colorscale[-1]))
    assert high[0] > high[2] and low[2] > low[0]  # red excites (positive), blue inhibits
    with_pictures = figures.connection_strip(["a", "b"], kernels, [np.zeros((4, 4, 3)), None])
    assert [t.type for t in with_pictures.data] == ["image", "heatmap", "heatmap"]


def test_the_families_table_and_heatmap_read_members_against_chance():
    rows = [
        {"family": 0, "channels": 10, "1x1": 0, "3x3": 0, "5x5": 10, "pool_proj": 0, "most_gathered_in": "5x5",
         "p_value": 1e-6, **{f"{b}_expected": e for b, e in zip(("1x1", "3x3", "5x5", "pool_proj"), (3, 4, 2, 1))}},
        {"family": 1, "channels": 4, "1x1": 2, "3x3": 2, "5x5": 0, "pool_proj": 0, "most_gathered_in": "1x1",
         "p_value": 0.7, **{f"{b}_expected": e for b, e in zip(("1x1", "3x3", "5x5", "pool_proj"), (1, 1.5, 1, 0.5))}},
    ]
    frame = figures.family_frame(rows, {0: "Bag x3", 1: "Shirt"})
    assert list(frame["5x5"]) == ["10 (2.0)", "0 (1.0)"] and list(frame["best images"]) == ["Bag x3", "Shirt"]
    fig = figures.family_heatmap(rows)
    z = np.array(fig.data[0].z)
    assert z[0, 2] == np.log2(5) and z[0, 0] == -3  # 10 of an expected 2; none of 3, clipped at 1/8


def test_four_diverse_images_of_one_channel(app_weights):
    at = _on("inception4a.3x3:12")
    at.select_slider(key="channels_steps").set_value(32).run()
    at.button(key="diverse_run").click().run()
    _ok(at)
    grids = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    fours = [s for s in grids if sum(t["type"] == "image" for t in s["data"]) == 4]
    assert len(fours) == 1
    assert all(a["text"].startswith("activation ") for a in fours[0]["layout"]["annotations"])
