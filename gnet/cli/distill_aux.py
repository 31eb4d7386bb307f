"""``gnet distill-aux``: fit the auxiliary heads of trained weights to their main head, as a stackable overlay."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import options

NAME = "distill-aux"
HELP = "fit the aux heads of trained weights (e.g. ImageNet's untrained ones) to the main head, on a frozen trunk"
ORDER = 45


def configure(p: argparse.ArgumentParser) -> None:
    from ..heads.distill import DistillConfig

    d = DistillConfig()
    options.add_weights(p)
    p.add_argument("--data", required=True,
                   help="a folder of photos (any layout, no labels needed), or 'fashion-mnist' (its training images)")
    p.add_argument("--out", type=Path, default=Path("aux_heads.pt"), help="the overlay file to write")
    p.add_argument("--labels", action="store_true",
                   help="also fit the true classes: the folder's subfolders must be named after the weights' classes")
    p.add_argument("--limit", type=options.positive_int, default=None, help="use only the first N images")
    p.add_argument("--temperature", type=float, default=d.temperature, help="softening of the main head's answer")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the recorded features")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="Adam's learning rate, cosine-decayed")
    p.add_argument("--held-out", type=float, default=d.held_out, help="share of images kept aside to measure agreement")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=0, help="image-decoding worker processes")
    p.add_argument("--num-threads", type=options.positive_int, default=None, help="torch CPU threads")
    options.add_device(p)
    options.add_format(p, json_help="print the overlay's card as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..heads.distill import DistillConfig, distill_aux
    from ..inspect.evaluation import fashion_mnist, image_folder, photo_folder
    from ..weights.loader import load
    from ..weights.overlay import save_overlay

    cfg = DistillConfig(
        temperature=args.temperature, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        held_out=args.held_out, seed=args.seed,
    )
    cfg.validate()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    loaded = load(options.weights(args), args.device)
    if args.data == "fashion-mnist":
        data = fashion_mnist(loaded, "train", limit=args.limit)
    elif args.labels:
        data = image_folder(loaded, args.data, limit=args.limit)
    else:
        data = photo_folder(loaded, args.data, limit=args.limit)
    command = f"python -m gnet {shlex.join(sys.argv[1:])}".strip()
    result = distill_aux(
        loaded, data, cfg, use_labels=args.labels, workers=args.workers, progress=args.progress, command=command
    )
    path = save_overlay(result.state_dict, result.card, args.out)
    if args.json:
        options.print_json({**result.to_dict(), "out": str(path)})
        return 0
    held = result.card["held_out"]
    print(f"aux heads of {loaded.card.name} distilled on {data.name}: {held['images']} images held out")
    for key, title in (("agreement_with_main", "top-1 agreement with main"), ("accuracy", "top-1 accuracy")):
        if key in held:
            print(f"  {title}: " + ", ".join(f"{h} {v:.2%}" for h, v in held[key].items()))
    print(f"wrote {path}; use it with --weights {options.weights(args)} --aux-overlay {path}")
    return 0
