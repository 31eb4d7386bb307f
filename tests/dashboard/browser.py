"""Driving the app in headless Chromium: waiting for Streamlit, checking a page is clean, uploading, screenshots."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

VIEWPORT = {"width": 1440, "height": 1000}
RUN_TIMEOUT_S = 240  # a cold page on a shared CPU: model load, batch of samples, attributions
# Page title in the navigation -> a text the page shows once it has drawn its content.
PAGES = {
    "Overview": "The network, stage by stage",
    "Inception branches": "Energy share of each branch",
    "Channels": "What each branch is worth",
    "Heads": "All sample images",
    "Gradients": "With aux / without aux, per layer",
    "Cost": "The paper's Table 1, side by side",
    "Design lab": "Does the cheaper design also learn as well?",
    "Attributions": "Press Compute",
}


def wait_idle(page, timeout_s: float = RUN_TIMEOUT_S) -> None:
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


def check_clean(page, name: str) -> None:
    """No traceback, no exception box, no st.error on the page."""
    body = page.locator("body").inner_text()
    assert "Traceback" not in body, f"{name}: a traceback reached the page"
    assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: an exception box is shown"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{name}: st.error shown: {errors.first.inner_text()}"


def open_app(browser, url: str):
    """A new page (of a Playwright browser or context) on the app's first page, drawn and idle."""
    page = browser.new_page()
    page.set_viewport_size(VIEWPORT)
    page.set_default_timeout(RUN_TIMEOUT_S * 1000)
    page.goto(url)
    page.get_by_text(PAGES["Overview"]).wait_for()
    wait_idle(page)
    return page


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def upload(page, path: Path) -> None:
    """Choose Upload in the sidebar and upload ``path``; waits until the app is idle again."""
    side = sidebar(page)
    side.locator('[data-testid="stRadio"] label').filter(has_text="Upload").click()
    wait_idle(page)
    side.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    side.get_by_text(path.name).first.wait_for()
    wait_idle(page)


def visit(page, title: str) -> None:
    """Open a page from the navigation and wait for its content (or an error, which ends the wait)."""
    sidebar(page).locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.get_by_text(PAGES[title]).or_(page.locator('[data-testid="stAlertContentError"]')).first.wait_for()
    wait_idle(page)


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"],"
        " section.main')].map(e => e.scrollHeight), document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, VIEWPORT["height"]), 12000)})
    page.wait_for_timeout(800)  # plotly re-lays out to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
