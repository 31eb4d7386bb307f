"""In a real browser: the Design lab page, with the 1x1 reductions off, then measured.
Screenshots: design_lab.png, design_lab_no_reductions.png."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import check_clean, open_app, screenshot, visit, wait_idle

pytestmark = pytest.mark.browser


def test_the_design_lab_in_a_browser(app_url, browser, artifacts_dir) -> None:
    page = open_app(browser, app_url)
    visit(page, "Design lab")
    check_clean(page, "Design lab")
    body = page.locator("body").inner_text()
    assert "What each of the paper's choices buys" in body and "Why the stem shrinks the map first" in body
    assert page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').count() == 2
    screenshot(page, artifacts_dir / "design_lab.png")
    page.get_by_text("1x1 reductions before the 3x3 and 5x5").click()
    page.get_by_text("What the numbers say").wait_for()
    wait_idle(page)
    check_clean(page, "Design lab, no reductions")
    assert "Without them the nine modules cost" in page.locator("body").inner_text()
    screenshot(page, artifacts_dir / "design_lab_no_reductions.png")
    page.get_by_role("button", name="Measure memory and speed").click()
    page.get_by_text("Measured on cpu", exact=False).wait_for()
    wait_idle(page)
    check_clean(page, "Design lab, measured")
    page.close()
