"""``gnet importance [--images N] [--data FOLDER] [--json|--csv]``: each head's accuracy drop per knocked-out branch."""

from __future__ import annotations

import argparse
import sys

from . import options

NAME = "importance"
HELP = "each head's accuracy drop when one of the 36 branches is knocked out, over labelled images"
ORDER = 61


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=options.positive_int, default=None,
                   help="the first N images (default: all; the bundled weights ship the full test set's table)")
    p.add_argument("--data", default=None, metavar="FOLDER",
                   help="an image folder root/<class>/<image> (default: the Fashion-MNIST test set)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="the table and each head's intact accuracy as JSON", csv_help="the table as CSV")


def run(args: argparse.Namespace) -> int:
    from ..inspect.ablation import importance
    from ..inspect.evaluation import fashion_mnist_test, image_folder
    from ..weights.loader import load

    loaded = load(options.weights(args), args.device)
    data = None
    if args.data is not None:
        data = image_folder(loaded, args.data, limit=args.images)
    elif args.images is not None:
        data = fashion_mnist_test(loaded, limit=args.images)
    with options.progress_bar("knock-outs") as progress:
        result = importance(loaded, data, progress=progress)
    if args.json:
        options.print_json(result.to_dict())
        return 0
    frame = result.to_frame()
    if args.csv:
        frame.to_csv(sys.stdout, index=False, float_format="%.4f")
        return 0
    table = frame.pivot_table(index=["module", "branch"], columns="head", values="drop", sort=False)
    intact = ", ".join(f"{h} {a:.2%}" for h, a in result.intact.items())
    print(f"{loaded.card.name}  |  {result.data}\nintact accuracy: {intact}")
    print("accuracy drop (percentage points) when one branch is knocked out; 0 where the head does not read it\n")
    print(f"{'module':<13}{'branch':<11}" + "".join(f"{h:>8}" for h in table.columns))
    for (module, branch), row in table.iterrows():
        print(f"{module:<13}{branch:<11}" + "".join(f"{v * 100:8.2f}" for v in row))
    return 0
