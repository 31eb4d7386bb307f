"""Cost of computing the heads' logits over the Fashion-MNIST test set, relative to bare batched forwards.

    python bench/bench_head_logits.py [--images 10000] [--repeats 3] [--batch-size 256] [--device cpu] [--threads 1]

``gnet.heads.logits.compute_logits`` (preprocessing from the raw test images, the lock and the
mode check per batch, three heads copied to numpy, progress) against a loop of bare
``net(x)`` calls in inference mode on the same batches, already preprocessed and on the
device. Timed interleaved in one run on the bundled weights at their 64 px; the median
ratio is reported with min and max. The issue's bar: at most 1.2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gnet, not an installed one

import torch  # noqa: E402
from ratios import sync  # noqa: E402

import gnet  # noqa: E402
from gnet.heads.logits import compute_logits  # noqa: E402
from gnet.inspect.evaluation import fashion_mnist_test  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = gnet.load("bundled", args.device)
    data = fashion_mnist_test(loaded, limit=args.images)
    batches = [x.to(loaded.device) for x, _, _ in data.batches(args.batch_size)]
    net = loaded.net.eval()

    def bare() -> None:
        with torch.inference_mode():
            for x in batches:
                net(x)
        sync(loaded.device)

    def heads() -> None:
        compute_logits(loaded, data, batch_size=args.batch_size)
        sync(loaded.device)

    with torch.inference_mode():
        net(batches[0])  # warm-up
    times: dict[str, list[float]] = {"bare": [], "heads": []}
    for _ in range(args.repeats):
        for name, f in (("bare", bare), ("heads", heads)):
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    ratios = [h / b for h, b in zip(times["heads"], times["bare"])]
    print(f"device={loaded.device_name} images={len(data)} input={loaded.card.input_size}px "
          f"batch={args.batch_size} threads={torch.get_num_threads()} repeats={args.repeats}")
    for name, ts in times.items():
        print(f"{name:>6}: median {statistics.median(ts):8.2f} s  (min {min(ts):.2f}, max {max(ts):.2f})")
    print(f"ratio heads/bare: median {statistics.median(ratios):.3f}  (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
