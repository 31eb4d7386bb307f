"""Cost of :func:`gnet.inspect.gradients.layer_gradients` (all four losses from one forward pass)
as a ratio to one plain training forward + backward on the same model and input.

The one-pass method runs one forward and three backwards (main, aux1, aux2; combined is
their weighted sum), the latter two stopping where their heads branch off, and also
computes activation gradients and per-layer norms. ``--naive`` adds the cost of four
separate forward + backward passes, the method it replaces. Repeats are interleaved so a
change in machine load hits every method alike; the median of per-repeat ratios is reported.

    PYTHONPATH=. python bench/bench_gradients.py --input-size 64 --batch-size 8 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gnet.inspect.gradients import LOSSES, layer_gradients
from gnet.net.losses import head_losses
from gnet.net.model import googlenet


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    p.add_argument("--naive", action="store_true", help="also time four separate forward + backward passes")
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)

    net = googlenet(num_classes=10, batch_norm=args.batch_norm, branch5x5_kernel=5, seed=0).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.input_size, args.input_size, generator=g)
    y = torch.randint(0, 10, (args.batch_size,), generator=g)

    def losses() -> dict[str, torch.Tensor]:
        per_head = head_losses(net(x), y)
        return {**per_head, "combined": per_head["total"]}

    def plain() -> None:
        losses()["combined"].backward()
        net.zero_grad(set_to_none=True)

    def one_pass() -> None:
        layer_gradients(net, x, y)

    def naive() -> None:
        for loss in LOSSES:
            losses()[loss].backward()
            net.zero_grad(set_to_none=True)

    methods = {"plain": plain, "one_pass": one_pass} | ({"naive": naive} if args.naive else {})
    for fn in methods.values():  # warm-up: allocator, lazy init
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(_timed(fn))

    print(f"GoogLeNet (batch norm: {args.batch_norm}, 5x5 kernel 5), input {args.batch_size}x3x"
          f"{args.input_size}x{args.input_size}, {args.num_threads} thread(s), {args.repeats} interleaved repeats, "
          f"torch {torch.__version__}")
    for name, ts in times.items():
        print(f"{name:>9}: median {statistics.median(ts) * 1e3:8.1f} ms   ({', '.join(f'{t * 1e3:.0f}' for t in ts)})")
    for name in methods:
        if name != "plain":
            ratios = [t / b for t, b in zip(times[name], times["plain"])]
            print(f"{name} / plain forward+backward: median ratio {statistics.median(ratios):.2f} "
                  f"(per repeat: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
