"""The app's speed where a user feels it, as ratios measured in one run.

1. Cold start: a fresh `streamlit run` server and a fresh browser. Times from the request to
   the navigation being drawn, to the sidebar's image, and to the first page being finished,
   each against ``python -c "import torch, torchvision, streamlit"`` timed in the same run
   (the floor: the app cannot show a result before those are imported).
2. Revisiting the Inception branches page: the server-side time of the page's script (AppTest,
   analysis and figures cached) against one bare forward of the loaded net.

    .venv/bin/python bench/bench_app_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from appserver import CHROMIUM, CHROMIUM_ARGS, server, wait_idle
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def import_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, torchvision, streamlit"], check=True)
    return time.perf_counter() - start


def cold_start(playwright) -> dict[str, float]:
    with server(ROOT) as (url, _):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(600_000)
        start = time.perf_counter()
        page.goto(url)
        page.locator('[data-testid="stSidebarNav"]').wait_for()
        nav = time.perf_counter() - start
        page.locator('[data-testid="stSidebar"] [data-testid="stImage"]').first.wait_for()
        sidebar = time.perf_counter() - start
        page.get_by_text("The network, stage by stage").wait_for()
        page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for()
        wait_idle(page)
        done = time.perf_counter() - start - 1.0  # wait_idle waits one quiet second
        browser.close()
    return {"nav": nav, "sidebar": sidebar, "done": done}


def revisit_ratio(repeats: int) -> list[float]:
    """Server-side script time of a branches-page rerun / one bare forward, per repeat."""
    os.environ["GNET_WEIGHTS"] = "bundled"
    from streamlit.testing.v1 import AppTest

    import gnet
    from gnet.data.samples import sample_images

    loaded = gnet.load("bundled", "cpu")
    x = loaded.preprocess(sample_images()[0].path)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600).run()
    at.switch_page("routes/branches.py").run()
    import dashboard.views.branches as branches

    render = branches.render
    spent: list[float] = []

    def timed(sel) -> None:
        start = time.perf_counter()
        render(sel)
        spent.append(time.perf_counter() - start)

    branches.render = timed
    ratios = []
    for _ in range(repeats):
        at.run()
        start = time.perf_counter()
        with torch.inference_mode():
            loaded.net(x)
        forward = time.perf_counter() - start
        ratios.append(spent[-1] / forward)
    return ratios


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows: dict[str, list[float]] = {"nav": [], "sidebar": [], "done": []}
    with sync_playwright() as playwright:
        for _ in range(args.repeats):
            floor = import_floor()
            times = cold_start(playwright)
            for key in rows:
                rows[key].append(times[key] / floor)
            print(f"import floor {floor:.1f} s; navigation {times['nav']:.1f} s, sidebar image {times['sidebar']:.1f} s, "
                  f"first page done {times['done']:.1f} s", flush=True)
    for key, label in (("nav", "navigation drawn"), ("sidebar", "sidebar image drawn"), ("done", "first page done")):
        r = rows[key]
        print(f"cold start, {label:<20} / import floor: median {statistics.median(r):.2f}x "
              f"(min {min(r):.2f}x, max {max(r):.2f}x)")
    r = revisit_ratio(max(5, args.repeats * 3))
    print(f"branches page revisit, server script / one bare forward: median {statistics.median(r):.1f}x "
          f"(min {min(r):.1f}x, max {max(r):.1f}x)")


if __name__ == "__main__":
    main()
