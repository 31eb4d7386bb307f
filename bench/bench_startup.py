"""Start-up cost of the CLI: ``gnet --help`` and ``gnet flops`` against ``python -c "import torch"``.

Each command runs in a fresh interpreter, interleaved, so a change in machine load hits every
one alike; the report is the median (and min / max) of per-repeat ratios to ``import torch``.
It also checks that neither command imports captum, streamlit or plotly.

    .venv/bin/python bench/bench_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "gnet --help": [sys.executable, "-m", "gnet", "--help"],
    "gnet flops": [sys.executable, "-m", "gnet", "flops", "--weights", "random"],
}
HEAVY = ("captum", "streamlit", "plotly")


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _heavy_imports(command: list[str]) -> list[str]:
    """Which of HEAVY the command imports, from ``python -X importtime``."""
    res = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True)
    seen = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in seen]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    for command in COMMANDS.values():
        _timed(command)  # warm the file cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(_timed(command))
    base = times["import torch"]
    print(f"{args.repeats} interleaved repeats, fresh interpreter each, {sys.executable}")
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        print(f"{name:>13}: median {statistics.median(ts):6.2f} s   ratio to import torch: median "
              f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
    for name in ("gnet --help", "gnet flops"):
        heavy = _heavy_imports(COMMANDS[name])
        found = ", ".join(heavy) if heavy else "none of " + ", ".join(HEAVY)
        print(f"{name} imports {found}")


if __name__ == "__main__":
    main()
