"""The dashboard in a real browser: upload an image, visit every page, look for charts and no traceback.

Starts ``streamlit run dashboard/serve.py`` on a free port and drives Debian's chromium with
Playwright. Full-page screenshots of every page are saved as artifacts (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gnet
from tests.dashboard.browser import PAGES, check_clean, open_app, screenshot, upload, visit, wait_idle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser

UPLOAD = ROOT / "assets" / "samples" / "fmnist_shirt_4.png"  # the heads are unsure about it: a telling sample


def _expected_top1(weights: str) -> str:
    """The main head's top-1 class for the uploaded image, from gnet itself (any weights source)."""
    return gnet.analyze(gnet.load(weights, download=False), UPLOAD).heads["main"].top[0].label


def test_every_page_in_a_browser(app_url, browser, artifacts_dir, app_weights):
    expected = _expected_top1(app_weights)
    page = open_app(browser, app_url)
    upload(page, UPLOAD)
    for number, title in enumerate(PAGES, start=1):
        visit(page, title)
        if title == "Attributions":
            page.get_by_role("button", name="Compute").click()
            page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
            wait_idle(page)
        check_clean(page, title)
        assert page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').count() > 0, f"{title}: no chart"
        if title in ("Overview", "Heads"):
            # The first chart is the three heads' top-5: it names the main head's top-1 class.
            text = page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
            assert expected in text, f"{title}: the main head's top-1 class {expected!r} is not shown"
        screenshot(page, artifacts_dir / f"{number:02d}_{title.lower().replace(' ', '_')}.png")
    page.close()
