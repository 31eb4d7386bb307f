"""The design lab's variants against the paper's design, at 224 and 64 px, as ratios in one run.

    python bench/bench_design.py [--sizes 224 64] [--batch-sizes 1 32] [--repeats 3] [--threads 2]

For every one-choice change of gnet.net.design.CHOICES (and Figure 2a's naive module):
parameters and test-time multiply-adds from the cost model, the bytes autograd saves for
backward in one training step of one image (measured), and the median forward (inference mode)
and training-step (forward + backward) latency at each batch size, every design timed in turn with
the paper's within each repeat (gnet.net.design.measure_latency), on the CPU, 1,000 classes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gnet, not an installed one

import torch  # noqa: E402

from gnet.device import hardware  # noqa: E402
from gnet.net.design import CHOICES, compare_designs  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(hardware())
    for size in args.sizes:
        result = compare_designs(CHOICES, input_size=size, batch_sizes=args.batch_sizes, repeats=args.repeats,
                                 device="cpu")
        print(f"\n{size} px, 1,000 classes, {args.repeats} repeats; each value / the paper's")
        keys = [("params", "params"), ("macs", "MACs"), ("activation", "saved")]
        keys += [(f"{k}_b{b}", f"{k} b{b}") for b in args.batch_sizes for k in ("forward", "train")]
        print(f"{'design':<26}" + "".join(f"{title:>12}" for _, title in keys))
        for row in result.table():
            print(f"{row['design']:<26}" + "".join(f"{row[f'{k}_ratio']:>11.2f}x" for k, _ in keys))
        paper = result.table()[0]
        print(f"paper: {paper['params'] / 1e6:.2f} M params, {paper['macs'] / 1e9:.3f} G MACs, "
              f"{paper['activation_bytes'] / 2**20:.1f} MiB saved, "
              + ", ".join(f"{k} {paper[f'{k}_s'] * 1e3:.1f} ms" for k, _ in keys[3:]))
        for row in result.latency.rows:
            print(f"  {row['design']:<26} b{row['batch_size']:<3} {row['pass']:<10} median {row['median_s'] * 1e3:9.1f} ms "
                  f"(min {row['min_s'] * 1e3:.1f}, max {row['max_s'] * 1e3:.1f})  {row['ratio']:.2f}x")


if __name__ == "__main__":
    main()
