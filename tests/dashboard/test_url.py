"""Views a user can share: query parameters restore a view in a fresh session and follow every change."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from gnet.data.samples import sample_images

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT_S = 300


def _open(page: str, **params: str) -> AppTest:
    """A fresh session that opens ``page`` with ``params`` in its address."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    if page != "overview":
        at.switch_page(f"routes/{page}.py").run()
    return at


def test_a_shared_branches_view_opens_as_it_was(app_weights):
    sample = sample_images()[5]
    at = _open("branches", sample=sample.name, module="inception4c", branch="5x5", channel="12")
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="sample").value.name == sample.name
    assert at.selectbox(key="branches_module").value == "inception4c"
    assert at.selectbox(key="branches_focus_branch").value == "5x5"
    assert at.selectbox(key="branches_focus_channel-inception4c-5x5").value == 12
    assert not at.toast


def test_changing_a_widget_changes_the_address(app_weights):
    at = _open("branches")
    at.selectbox(key="branches_module").set_value("inception5a").run()
    assert at.query_params["module"] == "inception5a"
    at.selectbox(key="branches_focus_branch").set_value("pool_proj").run()
    assert at.query_params["branch"] == "pool_proj"
    assert at.query_params["sample"] == sample_images()[0].name
    at.sidebar.radio(key="image_mode").set_value("Upload").run()
    assert "sample" not in at.query_params  # an upload never goes into the address


def test_bad_or_stale_values_fall_back_with_a_notice(app_weights):
    at = _open("overview", sample="no_such_sample", weights="no_such_weights")
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="sample").value.name == sample_images()[0].name
    assert at.sidebar.selectbox(key="weights").value == app_weights
    notices = " ".join(t.value for t in at.toast)
    assert "sample=no_such_sample" in notices and "weights=no_such_weights" in notices
    at = _open("branches", module="inception9z", branch="5x5", channel="999")
    assert not at.exception and not at.error
    assert at.selectbox(key="branches_module").value == "inception3a"  # the default
    assert at.selectbox(key="branches_focus_branch").value == "5x5"  # the valid part of the address is kept
    notices = " ".join(t.value for t in at.toast)
    assert "module=inception9z" in notices and "channel=999" in notices and "branch=" not in notices


def test_attributions_and_cost_settings_travel_too(app_weights):
    at = _open("attributions", head="aux1", method="saliency", **{"class": "Sneaker"})
    assert not at.exception and not at.error
    assert at.selectbox(key="attributions_head").value == "aux1"
    assert at.multiselect(key="attributions_methods").value == ["saliency"]
    target = at.selectbox(key="attributions_target-aux1")
    assert target.format_func(target.value) == "Sneaker"
    at = _open("cost", size="128", weights="bundled")
    assert at.select_slider(key="cost_input_size").value == 128
    at = _open("cost", size="100")
    assert "size=100" in " ".join(t.value for t in at.toast)
