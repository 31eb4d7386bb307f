"""How often Grad-CAM on each branch finds nothing: the count behind the Attributions page's starting branch.

Grad-CAM keeps the positive part of the gradient-weighted maps. Where they sum to a negative
value at every position, the map is empty and the page has nothing to show. For random
Fashion-MNIST test images, each head explained at its own top-1 class on the module the page
starts on for it (main: inception4e, aux2: inception4d, aux1: inception4a), this counts the
empty maps per branch, and for the others the share of the image above half the map's peak
(how focused the map is: 1.0 is a flat wash).

    PYTHONPATH=. .venv/bin/python bench/grad_cam_empty.py [--images 100] [--weights bundled]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from tqdm import tqdm

import gnet
from gnet.inspect.attributions import grad_cam
from gnet.inspect.evaluation import fashion_mnist_test
from gnet.net.layers import BRANCHES

MODULES = {"main": "inception4e", "aux2": "inception4d", "aux1": "inception4a"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--weights", default="bundled")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    loaded = gnet.load(args.weights, "cpu")
    data = fashion_mnist_test(loaded)
    picked = np.random.default_rng(args.seed).choice(len(data.labels), args.images, replace=False)
    empty = {(h, b): 0 for h in MODULES for b in BRANCHES}
    focus: dict[tuple[str, str], list[float]] = {k: [] for k in empty}
    for index in tqdm(picked, desc="images"):
        x = loaded.preprocess(data.picture(int(index)))
        with torch.inference_mode():
            out = loaded.net.eval()(x)
        for head, module in MODULES.items():
            target = int(getattr(out, head)[0].argmax())
            for branch in BRANCHES:
                heatmap = grad_cam(loaded.net, x, target, module=module, branch=branch, head=head)
                if heatmap.max() > 0:
                    focus[head, branch].append(float((heatmap > 0.5 * heatmap.max()).mean()))
                else:
                    empty[head, branch] += 1
    print(f"{args.weights} weights, {args.images} Fashion-MNIST test images (seed {args.seed}), "
          "each head's top-1 class")
    print(f"{'head':<6}{'layer':<24}{'empty maps':>12}{'focus (median)':>16}")
    for head, module in MODULES.items():
        for branch in BRANCHES:
            shares = focus[head, branch]
            median = f"{statistics.median(shares):.2f}" if shares else "-"
            print(f"{head:<6}{module + '.' + branch:<24}{empty[head, branch]:>8} / {args.images:<3}{median:>14}")


if __name__ == "__main__":
    main()
