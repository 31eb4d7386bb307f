"""The dashboard in a real browser: upload an image, visit every page, look for charts and no traceback.

Starts ``streamlit run dashboard/app.py`` on a free port and drives Debian's chromium with
Playwright. Full-page screenshots of every page are saved as artifacts (see conftest.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import gnet

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser

UPLOAD = ROOT / "assets" / "samples" / "fmnist_shirt_4.png"  # the heads are unsure about it: a telling sample
VIEWPORT = {"width": 1440, "height": 1000}
RUN_TIMEOUT_S = 240  # a cold page on a shared CPU: model load, batch of samples, attributions
# Page title in the navigation -> a text the page shows once it has drawn its content.
PAGES = {
    "Overview": "The network, stage by stage",
    "Inception branches": "Energy share of each branch",
    "Heads": "All sample images",
    "Gradients": "With aux / without aux, per layer",
    "Cost": "The paper's Table 1, side by side",
    "Attributions": "Press Compute",
}


def _wait_idle(page, timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Until Streamlit's 'running' indicator and spinners have been gone for a second."""
    page.wait_for_timeout(500)
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]').count() > 0
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        page.wait_for_timeout(250)
    pytest.fail(f"the app was still running after {timeout_s} s")


def _check_clean(page, name: str) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body, f"{name}: a traceback reached the page"
    assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: an exception box is shown"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{name}: st.error shown: {errors.first.inner_text()}"


def _screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"],"
        " section.main')].map(e => e.scrollHeight), document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, VIEWPORT["height"]), 12000)})
    page.wait_for_timeout(800)  # plotly re-lays out to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)


def _expected_top1(weights: str) -> str:
    """The main head's top-1 class for the uploaded image, from gnet itself (any weights source)."""
    return gnet.analyze(gnet.load(weights, download=False), UPLOAD).heads["main"].top[0].label


def test_every_page_in_a_browser(app_url, browser, artifacts_dir, app_weights):
    expected = _expected_top1(app_weights)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(RUN_TIMEOUT_S * 1000)
    page.goto(app_url)
    page.get_by_text("The network, stage by stage").wait_for()
    _wait_idle(page)

    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stRadio"] label').filter(has_text="Upload").click()
    _wait_idle(page)
    sidebar.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(UPLOAD))
    sidebar.get_by_text(UPLOAD.name).first.wait_for()
    _wait_idle(page)

    for number, (title, marker) in enumerate(PAGES.items(), start=1):
        sidebar.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        # An st.error instead of the page's content ends the wait at once (and fails below).
        page.get_by_text(marker).or_(page.locator('[data-testid="stAlertContentError"]')).first.wait_for()
        _wait_idle(page)
        if title == "Attributions":
            page.get_by_role("button", name="Compute").click()
            page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
            _wait_idle(page)
        _check_clean(page, title)
        assert page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').count() > 0, f"{title}: no chart"
        if title in ("Overview", "Heads"):
            # The first chart is the three heads' top-5: it names the main head's top-1 class.
            text = page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
            assert expected in text, f"{title}: the main head's top-1 class {expected!r} is not shown"
        _screenshot(page, artifacts_dir / f"{number:02d}_{title.lower().replace(' ', '_')}.png")
    page.close()
