"""``gnet probes [--data FOLDER] [--json|--csv]``: how much of the answer a linear probe reads at each depth."""

from __future__ import annotations

import argparse
import sys

from . import options

NAME = "probes"
HELP = "a linear probe's held-out accuracy at every depth (stem to inception5b), beside the three trained heads"
ORDER = 16


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="FOLDER",
                   help="an image folder root/<class>/<image> of any classes, split 80/20 within each class "
                        "(default: Fashion-MNIST's training split to fit, its test split to score; the bundled "
                        "weights ship that curve); the heads are scored when they know every class")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="every probe and head as JSON", csv_help="the probes as CSV")


def run(args: argparse.Namespace) -> int:
    from ..heads.readout import HEAD_POINTS, probes
    from ..weights.loader import load

    loaded = load(options.weights(args), args.device)
    with options.progress_bar("linear probes") as progress:
        curve = probes(loaded, args.data, progress=progress)
    if args.json:
        options.print_json(curve.to_dict())
        return 0
    if args.csv:
        fields = ["point", "accuracy", "log_loss", "train_accuracy"]
        print(",".join(fields))
        for score in curve.scores:
            print(",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in (getattr(score, f) for f in fields)))
        return 0
    at = {point: head for head, point in HEAD_POINTS.items() if head in curve.heads}
    print(f"{loaded.card.name}\nfitted on {curve.fit_data}; scored on {curve.test_data}\n")
    print(f"{'point':<13}{'probe':>8}{'log-loss':>10}{'fitted':>9}   trained head here")
    for score in curve.scores:
        head = at.get(score.point)
        mark = f"   {head} {curve.heads[head]:.2%}" if head else ""
        print(f"{score.point:<13}{score.accuracy:8.2%}{score.log_loss:10.3f}{score.train_accuracy:9.2%}{mark}")
    if not curve.heads:
        print("\n(no trained heads shown: the set has classes these weights do not know)", file=sys.stderr)
    return 0
