"""The Channels page's circuits in a real browser: the two strips, a click through to a channel below, its
thumbnails from one batched optimization, and the families of its module.

Screenshots go to the artifacts folder as 22_circuits.png and 23_circuits_families.png (see conftest.py).
"""

from __future__ import annotations

import pytest

from tests.dashboard.browser import check_clean, open_app, screenshot, wait_idle

pytestmark = pytest.mark.browser


def _strip(page, direction: str, sign: str):
    return page.locator(f".st-key-circuit-{direction}-{sign} .js-plotly-plot")


def test_circuits_in_a_browser(app_url, browser, artifacts_dir, app_weights):
    page = open_app(browser, app_url)
    page.goto(f"{app_url}/channels?module=inception4a&branch=3x3&channel=12")
    page.get_by_text("Built from: channels of inception3b").wait_for()
    page.get_by_text("Feeds: channels of inception4b").wait_for()
    wait_idle(page)
    check_clean(page, "Circuits")
    assert page.locator("h3").filter(has_text="looks for").first.inner_text() == "What inception4a.3x3:12 looks for"
    assert _strip(page, "upstream", "excite").locator("g.hm, .heatmaplayer image, image").count() >= 1

    # The strongest excitatory channel below becomes the current channel.
    button = page.locator(".st-key-circuit_open-upstream-excite-0 button").first
    name = button.inner_text().strip()
    button.click()
    page.locator("h3").filter(has_text=f"What inception3b.{name} looks for").wait_for()
    page.get_by_text("Built from: channels of inception3a").wait_for()
    wait_idle(page)
    check_clean(page, f"Circuits, opened inception3b.{name}")
    assert "module=inception3b" in page.url

    # Thumbnails for the whole upstream strip, one batched optimization.
    page.get_by_role("button", name="Visualize these").first.click()
    _strip(page, "upstream", "excite").locator("image").first.wait_for()
    wait_idle(page)
    check_clean(page, "Circuits, visualized")
    assert _strip(page, "upstream", "excite").locator("image").count() >= 6
    page.get_by_text("Built from: channels of inception3a").scroll_into_view_if_needed()
    screenshot(page, artifacts_dir / "22_circuits.png")

    # The module's families, against chance.
    heatmap = page.locator(".st-key-families-heatmap .js-plotly-plot")
    find = page.get_by_role("button", name="Find the families of inception3b")
    heatmap.or_(find).first.wait_for()
    if find.count():  # not yet in the disk cache of these weights
        find.click()
    heatmap.wait_for()
    wait_idle(page)
    check_clean(page, "Circuits, families")
    assert page.locator(".st-key-families-examples .js-plotly-plot image").count() == 6
    screenshot(page, artifacts_dir / "23_circuits_families.png")
    page.close()
