"""In a real browser: distilled aux heads uploaded in the sidebar and shown on the Heads page; the ImageNet
download button offline. Screenshots: heads_distilled_aux.png, imagenet_download_offline.png."""

from __future__ import annotations

from pathlib import Path

import pytest

import gnet
from gnet.weights.hub import offline_sentence
from tests.conftest import write_test_overlay
from tests.dashboard.browser import VIEWPORT, check_clean, open_app, screenshot, sidebar, visit, wait_idle

pytestmark = pytest.mark.browser


def test_distilled_aux_heads_from_the_sidebar(app_url, browser, artifacts_dir, app_weights, tmp_path: Path) -> None:
    overlay = write_test_overlay(gnet.load(app_weights, "cpu", download=False), tmp_path / "aux_heads.pt")
    page = open_app(browser, app_url)
    side = sidebar(page)
    side.get_by_text("Stack distilled aux heads").click()
    wait_idle(page)
    uploader = side.locator('[data-testid="stFileUploader"]').filter(has_text="Overlay from gnet distill-aux")
    uploader.locator('input[type="file"]').set_input_files(str(overlay))
    side.get_by_text("distilled aux heads", exact=False).first.wait_for()
    wait_idle(page)
    visit(page, "Heads")
    check_clean(page, "Heads")
    body = page.locator("body").inner_text()
    assert "are distilled" in body and "aux_heads.pt" in body and "trained them jointly" in body
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0  # not reported as untrained
    screenshot(page, artifacts_dir / "heads_distilled_aux.png")
    page.close()


def test_imagenet_download_offline(app_url, browser, artifacts_dir) -> None:
    if gnet.weights.loader.imagenet_cache_path().exists():
        pytest.skip("the ImageNet file is in this machine's torch hub cache: there is no download button")
    page = open_app(browser, app_url)
    side = sidebar(page)
    side.locator('[data-testid="stSelectbox"]').filter(has_text="Source").click()
    page.get_by_role("option", name="imagenet", exact=True).click()
    wait_idle(page)
    side.get_by_role("button", name="Download the ImageNet weights").click()
    wait_idle(page)
    assert offline_sentence() in side.inner_text()
    page.mouse.move(VIEWPORT["width"] - 10, 10)  # away from the button's tooltip
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})  # the whole sidebar, sentence included
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "imagenet_download_offline.png"))
    page.close()
