"""The Channels page in a real browser: open a channel from the branches page, visualize it, see its nine
dataset examples, knock out a branch and see the heads change, with no exception.

Screenshots go to the artifacts folder as 20_channels.png and 21_channels_knocked_out.png (see conftest.py).
"""

from __future__ import annotations

import pytest

from tests.dashboard.browser import check_clean, open_app, screenshot, visit, wait_idle

pytestmark = pytest.mark.browser


def _chart(page, key: str):
    """The plotly chart drawn with ``key=`` (Streamlit marks its container with an ``st-key-`` class)."""
    return page.locator(f".st-key-{key} .js-plotly-plot")


def test_a_channel_in_a_browser(app_url, browser, artifacts_dir, app_weights):
    page = open_app(browser, app_url)
    visit(page, "Inception branches")
    page.get_by_role("button", name="What does it look for?").click()
    page.get_by_text("What each branch is worth").wait_for()
    wait_idle(page)
    check_clean(page, "Channels")
    heading = page.locator("h3").filter(has_text="looks for").first.inner_text()
    assert heading.startswith("What inception3a."), heading  # the branches page's module, carried over

    # Nine dataset examples, each with the map cell where the channel peaks marked in red.
    examples = _chart(page, "channel-examples")
    examples.wait_for()
    assert examples.locator("image").count() == 9
    assert examples.locator("path[style*='rgb(255, 59, 48)']").count() == 9

    # A short visualization: the steps slider to its first stop (32), then Visualize.
    steps = page.locator('[data-testid="stSlider"]').filter(has_text="Optimization steps").get_by_role("slider")
    steps.focus()
    steps.press("Home")
    wait_idle(page)
    page.get_by_role("button", name="Visualize").first.click()
    _chart(page, "channel-visualization").wait_for()
    wait_idle(page)
    check_clean(page, "Channels, visualized")
    assert _chart(page, "channel-visualization").locator("image").count() == 1
    screenshot(page, artifacts_dir / "20_channels.png")

    # Knock out a branch of the module: the heads' bars change.
    bars = _chart(page, "knockout-bars")
    intact = bars.inner_text()
    page.locator('[data-testid="stCheckbox"]').filter(has_text="3x3 off").first.click()
    page.get_by_text("Switch a branch of").wait_for(state="detached")
    wait_idle(page)
    check_clean(page, "Channels, knocked out")
    assert bars.inner_text() != intact, "knocking out a branch left every head's probabilities as they were"
    assert _chart(page, "importance-heatmaps").count() == 1
    screenshot(page, artifacts_dir / "21_channels_knocked_out.png")
    page.close()
