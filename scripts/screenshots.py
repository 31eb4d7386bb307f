"""The README's pictures of the app, taken in headless Chromium from a real `streamlit run`.

    python scripts/screenshots.py [--out docs] [--all /tmp/pages]

Writes ``docs/screenshot.png`` (the Overview page as it first opens) and ``docs/table1.png``
(the Cost page's Table 1 section, cut from the heading to the CSV button). With ``--all``, also
every page in full, for looking at the app as a user would before a release.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from appserver import CHROMIUM, CHROMIUM_ARGS, server  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.dashboard.browser import PAGES, VIEWPORT, open_app, screenshot, visit  # noqa: E402

TABLE1_HEADING = "The paper's Table 1, side by side"


def table1_section(page, path: Path) -> None:
    """From the Table 1 heading down to the end of its section (the CSV button), in one picture."""
    heading = page.get_by_role("heading", name=TABLE1_HEADING)
    end = page.get_by_role("button", name="Table 1 comparison (CSV)")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 4000})  # the whole section at once
    page.wait_for_timeout(1500)  # plotly re-lays out to the new size
    heading.scroll_into_view_if_needed()
    top, bottom = heading.bounding_box(), end.bounding_box()
    height = int(bottom["y"] + bottom["height"] - top["y"]) + 24
    main = page.locator('[data-testid="stMain"]').bounding_box()
    page.screenshot(path=str(path), clip={"x": main["x"], "y": top["y"] - 12, "width": main["width"], "height": height})
    page.set_viewport_size(VIEWPORT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    p.add_argument("--all", type=Path, default=None, help="also save every page in full to this folder")
    args = p.parse_args()
    with server(ROOT) as (url, _pid), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_app(browser, url)
        page.screenshot(path=str(args.out / "screenshot.png"))
        visit(page, "Cost")
        table1_section(page, args.out / "table1.png")
        if args.all is not None:
            args.all.mkdir(parents=True, exist_ok=True)
            for title in PAGES:
                visit(page, title)
                screenshot(page, args.all / f"{title.lower().replace(' ', '_')}.png")
        browser.close()
    print(f"wrote {args.out / 'screenshot.png'} and {args.out / 'table1.png'}")


if __name__ == "__main__":
    main()
