"""Cost of 256 feature-visualization steps relative to 256 plain forward+backward passes of the same input.

    python bench/bench_features.py [--weights bundled] [--device cpu] [--steps 256] [--repeats 3]

At the weights' input size (64 px for the bundled net), one image. Two baselines, timed
interleaved with the visualizations in one run: a forward and a backward to the input only
(what a visualization needs) and a forward and a full ``.backward()`` (weight gradients too).
Targets: a channel in the middle of the net (inception4c.5x5:12, whose forward stops after
inception4c) and the main head's class 7 (the whole net). The issue's bar: visualization <=
1.5 x plain forward+backward. Median ratio with min and max over the repeats.
"""

from __future__ import annotations

import argparse

import torch
from ratios import interleaved, ratio, report, sync

import gnet
from gnet.inspect.features import visualize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    loaded = gnet.load(args.weights, args.device)
    net = loaded.net.eval()
    size = loaded.card.input_size
    x = torch.randn(1, 3, size, size, device=loaded.device)
    targets = ["inception4c.5x5:12", f"main:{loaded.classes[7 % len(loaded.classes)]}"]

    def to_input() -> None:
        for _ in range(args.steps):
            image = x.clone().requires_grad_(True)
            torch.autograd.grad(net(image).main.sum(), [image])
        sync(loaded.device)

    def full() -> None:
        for _ in range(args.steps):
            image = x.clone().requires_grad_(True)
            net(image).main.sum().backward()
        net.zero_grad(set_to_none=True)
        sync(loaded.device)

    def visualizing(target: str):
        def run() -> None:
            visualize(loaded, target, steps=args.steps)
            sync(loaded.device)

        return run

    cases = {"fwd+bwd to input": to_input, "fwd+full backward": full, **{t: visualizing(t) for t in targets}}
    times = interleaved(cases, args.repeats)
    print(f"weights={args.weights} device={loaded.device_name} input=1x3x{size}x{size} steps={args.steps} "
          f"repeats={args.repeats}")
    report(times)
    for target in targets:
        for base in ("fwd+bwd to input", "fwd+full backward"):
            ratio(times, target, base)


if __name__ == "__main__":
    main()
