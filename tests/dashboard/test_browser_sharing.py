"""Shared views and shared servers, in a real browser.

- A URL with query parameters opens that view; changing a widget changes the URL; a bad value
  falls back to the default with a notice.
- Four sessions upload four different images at the same moment: each sees exactly the
  predictions a lone session gets for its image, and no error.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

import gnet
from gnet.data.samples import sample_images
from tests.dashboard.browser import check_clean, open_app, sidebar, wait_idle

pytestmark = pytest.mark.browser


def _selected(area, label: str) -> str:
    """The text a selectbox shows (its input's value)."""
    return area.locator('[data-testid="stSelectbox"]').filter(has_text=label).locator("input").input_value()


def _goto(page, url: str) -> None:
    page.goto(url)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    wait_idle(page)


def test_a_url_opens_its_view_and_follows_changes(app_url, browser, app_weights):
    sample = sample_images()[7]
    page = browser.new_page()
    page.set_default_timeout(240_000)
    _goto(page, f"{app_url}/branches?sample={sample.name}&module=inception4c&branch=5x5&channel=12")
    check_clean(page, "shared view")
    main = page.locator('[data-testid="stMain"]')
    assert _selected(main, "Module").startswith("inception4c (")
    assert _selected(main, "Branch") == "5x5" and _selected(main, "Channel") == "12"
    assert _selected(sidebar(page), "Sample") == sample.name

    main.locator('[data-testid="stSelectbox"]').filter(has_text="Module").locator("input").click()
    page.get_by_role("option").filter(has_text="inception5a").click()
    wait_idle(page)
    assert parse_qs(urlparse(page.url).query)["module"] == ["inception5a"]

    _goto(page, f"{app_url}/branches?module=inception9z")
    assert page.get_by_text("Ignored module=inception9z").count() > 0  # the notice
    check_clean(page, "bad module")
    assert _selected(main, "Module").startswith("inception3a (")
    page.close()


def test_four_sessions_at_once_each_see_their_own_image(app_url, browser, app_weights):
    loaded = gnet.load(app_weights, "cpu", download=False)
    chosen = sample_images()[:20:5]  # four different garments
    expected = {s.name: gnet.analyze(loaded, s.path).heads["main"].top[0].label for s in chosen}
    assert len(set(expected.values())) > 1
    contexts = [browser.new_context() for _ in chosen]
    pages = [open_app(context, app_url) for context in contexts]
    for page in pages:
        sidebar(page).locator('[data-testid="stRadio"] label').filter(has_text="Upload").click()
    for page in pages:
        wait_idle(page)
    inputs = [sidebar(p).locator('[data-testid="stFileUploader"] input[type="file"]') for p in pages]
    for field, sample in zip(inputs, chosen):  # all four uploads before waiting for any
        field.set_input_files(str(sample.path))
    for page, sample in zip(pages, chosen):
        sidebar(page).get_by_text(sample.path.name).first.wait_for()
        wait_idle(page)
        check_clean(page, sample.name)
        bars = page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
        assert expected[sample.name] in bars, (sample.name, expected[sample.name])
    for context in contexts:
        context.close()
