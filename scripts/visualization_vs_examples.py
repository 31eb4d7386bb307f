"""Does a feature visualization excite its channel more than the channel's best dataset image? For N random channels.

    python scripts/visualization_vs_examples.py [--channels 20] [--steps 256] [--seed 0] [--num-threads 1]

For the bundled weights: N channels drawn at random (seeded) from the 5,488 of inception3a..5b;
for each, the channel's spatial-mean activation (after its ReLU) on its visualization (the
final image, no transforms) next to the highest spatial mean over the 10,000 Fashion-MNIST test
images (the shipped index, gnet.inspect.examples). Prints a table and how many channels the
visualization beats; the numbers go into the issue's closing note.
"""

from __future__ import annotations

import argparse
import random

import torch

import gnet
from gnet.inspect.examples import example_index
from gnet.inspect.features import visualize
from gnet.net.layers import BRANCH_POINTS, parse_channel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=20)
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="draws the channels (each visualization uses seed 0)")
    p.add_argument("--num-threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)

    loaded = gnet.load("bundled", "cpu")
    index = example_index(loaded, build=False)
    if index is None:
        raise SystemExit("the shipped index does not fit these weights and data: run scripts/build_channel_examples.py")
    every = [f"{b.name}:{c}" for b in BRANCH_POINTS for c in range(b.channels)]
    chosen = random.Random(args.seed).sample(every, args.channels)
    print(f"{'channel':<28}{'visualization':>14}{'best test image':>17}{'ratio':>8}")
    wins = 0
    for name in chosen:
        target = parse_channel(name)
        best = index.examples(target, "mean")[0].value
        result = visualize(loaded, target, steps=args.steps)
        wins += result.activation > best
        ratio = result.activation / best if best > 0 else float("inf")
        print(f"{name:<28}{result.activation:>14.4f}{best:>17.4f}{ratio:>8.2f}", flush=True)
    print(f"\nthe visualization ({args.steps} steps, seed 0) beats the best of {index.images:,} test images "
          f"on {wins} of {len(chosen)} channels")


if __name__ == "__main__":
    main()
