"""Cost of the one-pass probe relative to a bare eval forward of the same model and input.

    python bench/bench_probe.py [--weights random] [--device cpu] [--repeats 15]

Both are timed interleaved in one run (this machine is shared and noisy), and the
median ratio is reported. The issue's bar: analyze <= 1.10 x bare forward.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from ratios import sync

import gnet
from gnet.data.samples import sample_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="random")
    p.add_argument("--device", default=None)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()

    loaded = gnet.load(args.weights, args.device)
    x = loaded.preprocess(sample_images()[-1].path)
    net = loaded.net.eval()

    def bare() -> None:
        with torch.inference_mode():
            net(x)
        sync(loaded.device)

    def probe() -> None:
        gnet.analyze(loaded, x)

    for f in (bare, probe):  # warm-up
        f()
    times: dict[str, list[float]] = {"bare": [], "probe": []}
    for _ in range(args.repeats):
        for name, f in (("bare", bare), ("probe", probe)):
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    ratios = [p / b for p, b in zip(times["probe"], times["bare"])]
    print(f"weights={args.weights} device={loaded.device_name} input={tuple(x.shape)} repeats={args.repeats}")
    for name, ts in times.items():
        print(f"{name:>6}: median {statistics.median(ts) * 1e3:8.1f} ms  (min {min(ts) * 1e3:.1f})")
    print(f"ratio probe/bare: median {statistics.median(ratios):.3f}  (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
