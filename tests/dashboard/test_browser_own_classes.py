"""In a real browser: the Heads page's "Your own classes" panel takes a zip, retrains the three heads, and goes back.
Screenshot: heads_own_classes.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_colour_folder
from tests.dashboard.browser import check_clean, open_app, screenshot, visit, wait_idle
from tests.dashboard.test_own_classes import zipped

pytestmark = pytest.mark.browser


def test_a_zip_retrains_the_heads_in_the_browser(app_url, browser, artifacts_dir, tmp_path: Path) -> None:
    root = write_colour_folder(tmp_path / "things", classes=("mug", "pen", "spoon"), per_class=5, size=(40, 40))
    archive = tmp_path / "things.zip"
    archive.write_bytes(zipped(root))
    page = open_app(browser, app_url)
    visit(page, "Heads")
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="A zip of class folders")
    uploader.locator('input[type="file"]').set_input_files(str(archive))
    page.get_by_role("button", name="Retrain the three heads").wait_for()
    page.get_by_role("button", name="Retrain the three heads").click()
    page.get_by_text("now answer in your 3 classes", exact=False).wait_for()
    wait_idle(page)
    check_clean(page, "Heads, own classes")
    body = page.locator("body").inner_text()
    assert "Heads retrained on" in body and "in your classes and in the original ones" in body  # tables are canvases
    page.get_by_text("Your own classes", exact=True).scroll_into_view_if_needed()
    screenshot(page, artifacts_dir / "heads_own_classes.png")
    page.get_by_role("button", name="Back to the original classes").click()
    page.get_by_role("button", name="Retrain the three heads").or_(
        page.locator('[data-testid="stFileUploader"]').filter(has_text="A zip of class folders")).first.wait_for()
    wait_idle(page)
    assert "Heads retrained on" not in page.locator("body").inner_text()
    page.close()
