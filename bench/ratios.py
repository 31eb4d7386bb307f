"""Shared by the ratio benchmarks: cases timed interleaved in one run, medians and ratios printed.

This machine is shared and noisy, so the cases take turns within every repeat, and each ratio is
taken repeat by repeat (median, with min and max) rather than between two separate runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def interleaved(cases: Mapping[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Seconds each case takes, ``repeats`` times, the cases taking turns in every repeat."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            t = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - t)
    return times


def report(times: Mapping[str, list[float]], *, scale: float = 1.0, unit: str = "s") -> None:
    """One line per case: median, min and max (seconds times ``scale``, in ``unit``)."""
    width = max(len(name) for name in times)
    for name, ts in times.items():
        print(f"{name:>{width}}: median {statistics.median(ts) * scale:9.2f} {unit}  "
              f"(min {min(ts) * scale:.2f}, max {max(ts) * scale:.2f})")


def ratio(times: Mapping[str, list[float]], top: str, base: str) -> float:
    """Print and return the median of ``top / base``, repeat by repeat, with its min and max."""
    ratios = [a / b for a, b in zip(times[top], times[base])]
    median = statistics.median(ratios)
    print(f"ratio {top} / {base}: median {median:.3f}  (min {min(ratios):.3f}, max {max(ratios):.3f})")
    return median


def sync(device) -> None:
    """Wait for the device's queued work, so that a timing covers it (gnet.device.synchronize)."""
    from gnet.device import synchronize

    synchronize(device)
