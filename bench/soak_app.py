"""Soak test of a shared server (not part of the test suite): many distinct uploads from concurrent sessions.

``--sessions`` browser sessions (2-4) take turns uploading ``--uploads`` distinct images in all,
each followed by visits to the heavy pages (Overview, Inception branches, Heads, Attributions
with Saliency computed). The server's resident memory is printed after every ``--every``
uploads; the bar is at most 150 MB of growth after the first 50 uploads.

    .venv/bin/python bench/soak_app.py --uploads 200 --sessions 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from appserver import CHROMIUM, CHROMIUM_ARGS, open_session, rss_mb, server, upload, visit, wait_idle
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("Overview", "Inception branches", "Heads", "Attributions")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uploads", type=int, default=200)
    p.add_argument("--sessions", type=int, default=3, choices=(2, 3, 4))
    p.add_argument("--every", type=int, default=50)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, server(ROOT) as (url, pid), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [open_session(browser, url) for _ in range(args.sessions)]
        table = [(0, rss_mb(pid))]
        stuck: list[int] = []
        for n in range(1, args.uploads + 1):
            side = int(rng.integers(64, 640))
            path = Path(folder) / f"soak_{n:03d}.png"
            Image.fromarray(rng.integers(0, 256, (side, side * 4 // 3, 3), dtype=np.uint8)).save(path)
            page = pages[n % len(pages)]
            try:
                upload(page, path)
                for title in HEAVY:
                    visit(page, title)
                if page.get_by_role("button", name="Compute").count():
                    page.get_by_role("button", name="Compute").click()
                    wait_idle(page)
            except TimeoutError:  # a hang is a finding: keep its picture and go on with the next upload
                picture = Path(tempfile.gettempdir()) / f"soak_stuck_{n:03d}.png"
                page.screenshot(path=str(picture), full_page=True)
                stuck.append(n)
                print(f"upload {n} (session {n % len(pages)}, {page.url}): still running after 300 s; see {picture}",
                      flush=True)
            if n % args.every == 0:
                table.append((n, rss_mb(pid)))
                print(f"{n:4d} uploads: server RSS {table[-1][1]:.0f} MB  ({time.monotonic() - started:.0f} s)", flush=True)
        browser.close()
    print("\nuploads | server RSS (MB)")
    for n, rss in table:
        print(f"{n:7d} | {rss:.0f}")
    print(f"uploads that left the app running for over 300 s: {stuck or 'none'}")
    after_50 = dict(table).get(50)
    if after_50 is not None:
        print(f"growth after the first 50 uploads: {table[-1][1] - after_50:+.0f} MB (bar: at most +150 MB)")


if __name__ == "__main__":
    main()
