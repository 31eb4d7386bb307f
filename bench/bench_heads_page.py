"""Server-side time of the whole Heads page on the bundled weights, once the model is loaded.

    python bench/bench_heads_page.py [--repeats 5]

Streamlit's AppTest runs the app's script in this process. The model is loaded by a first run;
then, for each repeat, every cache but the model's is cleared and the Heads page is run
(``cold``: the image's analysis, the samples, the shipped test-set logits read and compared,
the early-exit curve, the gallery's thumbnails, every figure), followed by a rerun of the
same page (``warm``: what a click on the page costs). Median, min and max are reported
against the issue's budget: at most 2 s for the whole page with the shipped logits.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GNET_WEIGHTS", "bundled")
os.environ.setdefault("GNET_OFFLINE", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

import dashboard.cache  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
BUDGET_S = 2.0
_KEEP = {"model", "device_name"}  # cached across repeats: the page is timed after the model is loaded


def _clear_all_but_the_model() -> None:
    for info in pkgutil.iter_modules(dashboard.cache.__path__, "dashboard.cache."):
        module = importlib.import_module(info.name)
        for name in dir(module):
            cached = getattr(module, name)
            if name not in _KEEP and callable(getattr(cached, "clear", None)) and hasattr(cached, "__wrapped__"):
                cached.clear()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    first = AppTest.from_file(APP, default_timeout=600).run()  # loads the model (and warms imports)
    assert not first.exception, [e.value for e in first.exception]
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        at = AppTest.from_file(APP, default_timeout=600).run()  # a new session, on the Overview
        _clear_all_but_the_model()
        t = time.perf_counter()
        at.switch_page("routes/heads.py").run()
        times["cold"].append(time.perf_counter() - t)
        assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
        assert any("shipped" in c.value for c in at.caption), "the page did not use the shipped logits"
        t = time.perf_counter()
        at.run()
        times["warm"].append(time.perf_counter() - t)
    print(f"Heads page, bundled weights, AppTest (server side), repeats={args.repeats}")
    for name, ts in times.items():
        print(f"{name:>5}: median {statistics.median(ts):6.2f} s  (min {min(ts):.2f}, max {max(ts):.2f})"
              f"  = {statistics.median(ts) / BUDGET_S:.2f} x the {BUDGET_S:.0f} s budget")


if __name__ == "__main__":
    main()
