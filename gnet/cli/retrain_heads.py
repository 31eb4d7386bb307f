"""``gnet retrain-heads``: new classes for all three heads, their last linear layers fitted on a frozen trunk."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import options

NAME = "retrain-heads"
HELP = "teach the three heads your own classes (FOLDER/<class>/<image> or a .zip of it), trunk frozen"
ORDER = 46


def configure(p: argparse.ArgumentParser) -> None:
    options.add_weights(p)
    p.add_argument("--data", required=True, metavar="FOLDER_OR_ZIP",
                   help="FOLDER/<class>/<image>, or a .zip of that layout; at least 2 classes of at least 2 images")
    p.add_argument("--out", type=Path, default=Path("labels.pt"), help="the overlay file to write")
    p.add_argument("--held-out", type=float, default=0.2, help="share of each class kept aside to score the heads")
    p.add_argument("--seed", type=int, default=0, help="which images are held out")
    options.add_device(p)
    options.add_format(p, json_help="print the overlay's card as JSON")


def run(args: argparse.Namespace) -> int:
    from ..data.archive import class_tree
    from ..errors import GNetError
    from ..heads.retrain import retrain_heads
    from ..inspect.evaluation import class_folder
    from ..weights.loader import load
    from ..weights.overlay import save_labels_overlay

    if not 0 < args.held_out < 1:
        raise GNetError(f"--held-out must lie strictly between 0 and 1, got {args.held_out}.")
    loaded = load(options.weights(args), args.device)
    command = f"python -m gnet {shlex.join(sys.argv[1:])}".strip()
    with class_tree(args.data) as root, options.progress_bar("retraining the heads") as progress:
        data = class_folder(loaded, root)
        data.name = f"{Path(args.data).name} ({len(data):,} images)"
        result = retrain_heads(loaded, data, held_out=args.held_out, seed=args.seed, progress=progress, command=command)
    path = save_labels_overlay(result.state_dict, result.card, args.out)
    if args.json:
        options.print_json({**result.to_dict(), "out": str(path)})
        return 0
    held = result.card["held_out"]
    print(f"the three heads of {loaded.card.name} retrained on {data.name}, {len(data.classes)} classes, "
          f"in {result.card['seconds']:.1f} s")
    print(f"  held-out accuracy ({held['images']} images): " + ", ".join(f"{h} {v:.2%}" for h, v in held["accuracy"].items()))
    print(f"wrote {path}; use it with --weights {options.weights(args)}+labels={path}")
    return 0
