"""The Heads page's dataset section in a real browser: the confusion matrices and the gallery are drawn,
a click on a gallery thumbnail makes that test image the current image, and an uploaded photo gets the
out-of-domain banner.

Uses the server and headless Chromium of conftest.py and the helpers of browser.py; screenshots
go to the artifacts folder (``heads_dataset.png``, ``heads_picked.png``, ``overview_photo_banner.png``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gnet
from gnet.inspect.evaluation import evaluation_set
from tests.dashboard.browser import check_clean, open_app, screenshot, sidebar, upload, visit, wait_idle

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "assets" / "samples" / "photos" / "chelsea.jpg"
pytestmark = pytest.mark.browser


def test_gallery_click_and_photo_banner(app_url, browser, artifacts_dir, app_weights):
    if app_weights != "bundled":
        pytest.skip("the page's numbers below are those of the bundled weights' shipped logits")
    loaded = gnet.load(app_weights, "cpu")
    page = open_app(browser, app_url)

    visit(page, "Heads")
    page.get_by_text("Where an auxiliary head and main disagree").wait_for()
    check_clean(page, "Heads")
    page.get_by_text("Confusion matrices").wait_for()
    heatmaps = page.locator('[data-testid="stPlotlyChart"]').filter(has=page.locator(".heatmaplayer"))
    assert heatmaps.count() >= 3  # the samples' agreement, the three confusion matrices (one figure), their agreement
    thumbs = page.locator("button.gnet-thumb")
    thumbs.first.wait_for()
    assert thumbs.count() == 24
    screenshot(page, artifacts_dir / "heads_dataset.png")

    first = thumbs.first
    index = int(re.search(r"#(\d+)", first.get_attribute("title")).group(1))
    first.click()
    sidebar(page).get_by_text(f"#{index}").first.wait_for()
    wait_idle(page)
    check_clean(page, "Heads after a gallery click")
    chosen = sidebar(page).locator('[data-testid="stRadio"] label:has(input:checked)')
    assert chosen.count() == 1 and "Test set" in chosen.inner_text()
    expected = gnet.analyze(loaded, evaluation_set(loaded).picture(index)).heads["main"].top[0].label
    assert expected in page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
    screenshot(page, artifacts_dir / "heads_picked.png")

    upload(page, PHOTO)
    visit(page, "Overview")
    page.get_by_text("This image looks unlike the data these weights were trained on").wait_for()
    assert page.get_by_role("button", name=re.compile("Look at a sample the model knows")).count() == 1
    screenshot(page, artifacts_dir / "overview_photo_banner.png")
    page.close()
