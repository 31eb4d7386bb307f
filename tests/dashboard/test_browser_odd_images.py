"""Odd but valid uploads in a real browser: every page works with each, and no request leaves the server.

The images come from tests/odd_images.py (extreme aspect ratios both ways, 1 x 1, 16-bit gray,
CMYK JPEG, palette with transparency, animated GIF, EXIF-rotated JPEG, a PNG named .jpg).
Every request the page makes is routed through a handler that lets only this machine's own
server through and records (and aborts) anything else: the app must work fully offline.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.dashboard.browser import PAGES, check_clean, open_app, screenshot, upload, visit
from tests.odd_images import odd_images

pytestmark = pytest.mark.browser
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def test_odd_images_on_every_page_and_nothing_leaves_the_machine(app_url, browser, artifacts_dir, tmp_path):
    outside: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if urlparse(url).scheme in ("http", "https", "ws", "wss") and urlparse(url).hostname not in LOCAL_HOSTS:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    context = browser.new_context()
    context.route("**/*", only_local)
    page = open_app(context, app_url)
    for image in odd_images(tmp_path / "odd"):
        upload(page, image)
        for title in PAGES:
            visit(page, title)
            check_clean(page, f"{title} with {image.name}")
        screenshot(page, artifacts_dir / f"odd_{image.stem}.png")
    page.close()
    context.close()
    assert outside == [], f"requests left the local server: {sorted(set(outside))}"
