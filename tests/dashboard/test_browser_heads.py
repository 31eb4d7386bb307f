"""The Heads page's dataset section in a real browser: the confusion matrices and the gallery are drawn,
a click on a gallery thumbnail makes that test image the current image, and an uploaded photo gets the
out-of-domain banner.

Uses the server and headless Chromium of conftest.py and the helpers of test_browser.py; screenshots
go to the artifacts folder (``heads_dataset.png``, ``heads_picked.png``, ``overview_photo_banner.png``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gnet
from gnet.evaldata import evaluation_set
from tests.dashboard.test_browser import RUN_TIMEOUT_S, VIEWPORT, _check_clean, _screenshot, _wait_idle

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "assets" / "samples" / "photos" / "chelsea.jpg"
pytestmark = pytest.mark.browser


def _go(page, sidebar, title: str, marker: str) -> None:
    sidebar.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.get_by_text(marker).or_(page.locator('[data-testid="stAlertContentError"]')).first.wait_for()
    _wait_idle(page)


def test_gallery_click_and_photo_banner(app_url, browser, artifacts_dir, app_weights):
    if app_weights != "bundled":
        pytest.skip("the page's numbers below are those of the bundled weights' shipped logits")
    loaded = gnet.load(app_weights, "cpu")
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(RUN_TIMEOUT_S * 1000)
    page.goto(app_url)
    page.get_by_text("The network, stage by stage").wait_for()
    _wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')

    _go(page, sidebar, "Heads", "Where an auxiliary head and main disagree")
    _check_clean(page, "Heads")
    page.get_by_text("Confusion matrices").wait_for()
    confusion = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".heatmaplayer"))
    assert confusion.count() >= 2  # the three confusion matrices (one figure) and the agreement matrix
    thumbs = page.locator("button.gnet-thumb")
    thumbs.first.wait_for()
    assert thumbs.count() == 24
    _screenshot(page, artifacts_dir / "heads_dataset.png")

    first = thumbs.first
    index = int(re.search(r"#(\d+)", first.get_attribute("title")).group(1))
    first.click()
    sidebar.get_by_text(f"#{index}").first.wait_for()
    _wait_idle(page)
    _check_clean(page, "Heads after a gallery click")
    chosen = sidebar.locator('[data-testid="stRadio"] label:has(input:checked)')
    assert chosen.count() == 1 and "Test set" in chosen.inner_text()
    picture = evaluation_set(loaded).picture(index)
    expected = gnet.analyze(loaded, picture).heads["main"].top[0].label
    assert expected in page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
    _screenshot(page, artifacts_dir / "heads_picked.png")

    sidebar.locator('[data-testid="stRadio"] label').filter(has_text="Upload").click()
    _wait_idle(page)
    sidebar.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(PHOTO))
    sidebar.get_by_text(PHOTO.name).first.wait_for()
    _wait_idle(page)
    _go(page, sidebar, "Overview", "The network, stage by stage")
    banner = page.get_by_text("This image looks unlike the data these weights were trained on")
    banner.wait_for()
    assert page.get_by_role("button", name=re.compile("Look at a sample the model knows")).count() == 1
    _screenshot(page, artifacts_dir / "overview_photo_banner.png")
    page.close()
