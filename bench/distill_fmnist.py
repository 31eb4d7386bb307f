"""Validation of ``gnet distill-aux`` on the bundled net, whose aux heads were trained jointly (the reference).

    python bench/distill_fmnist.py [--threads 1] [--limit N] [--epochs 10] [--out runs/aux_fmnist.pt]

The bundled net's aux heads are replaced by freshly initialised ones and distilled on the
60,000 Fashion-MNIST training images WITHOUT their labels (only the main head's softened
answers), then every head is scored on the 10,000 test images next to the jointly trained
heads. The bar (issue 10): each distilled head within 3 points of its jointly trained twin.
Exits 1 when a head misses it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

import gnet
from gnet.heads.distill import DistillConfig, distill_aux, head_accuracy
from gnet.inspect.evaluation import fashion_mnist, fashion_mnist_test
from gnet.net.model import googlenet
from gnet.weights.overlay import save_overlay
from gnet.weights.sources import with_overlay

BAR_POINTS = 3.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="distill on the first N training images only")
    p.add_argument("--epochs", type=int, default=DistillConfig.epochs)
    p.add_argument("--out", type=Path, default=Path("runs/aux_fmnist.pt"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    base = gnet.load("bundled", "cpu")
    test = fashion_mnist_test(base)
    joint = head_accuracy(base, test)

    fresh = copy.deepcopy(base)  # the re-initialised heads, before distillation: chance level
    seeded = googlenet(num_classes=10, seed=DistillConfig.seed)
    for head in ("aux1", "aux2"):
        getattr(fresh.net, head).load_state_dict(getattr(seeded, head).state_dict())
    before = head_accuracy(fresh, test)

    train = fashion_mnist(base, "train", limit=args.limit)
    result = distill_aux(base, train, DistillConfig(epochs=args.epochs), use_labels=False, command=" ".join(sys.argv))
    save_overlay(result.state_dict, result.card, args.out)
    distilled = head_accuracy(gnet.load(with_overlay("bundled", args.out), "cpu"), test)

    print(f"distilled on {train.name} without labels, {result.card['steps']} steps, T={result.card['temperature']}; "
          f"scored on {test.name}; {args.threads} thread(s), {time.monotonic() - started:.0f} s in all")
    print(f"{'head':<6}{'jointly trained':>17}{'re-initialised':>16}{'distilled':>11}{'difference':>12}")
    ok = True
    for head in ("main", "aux1", "aux2"):
        diff = 100 * (distilled[head] - joint[head])
        ok &= head == "main" or abs(diff) <= BAR_POINTS
        print(f"{head:<6}{joint[head]:>16.2%}{before[head]:>16.2%}{distilled[head]:>11.2%}{diff:>+11.2f}pt")
    print(f"bar: aux heads within {BAR_POINTS:g} points of the jointly trained ones: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
