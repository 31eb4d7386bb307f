"""``gnet examples TARGET [--json]``: the dataset images that excite one channel most, by spatial mean and max."""

from __future__ import annotations

import argparse

from . import options

NAME = "examples"
HELP = "the 9 dataset images that excite a channel most (by spatial mean and by spatial max)"
ORDER = 63


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a channel, e.g. inception4c.5x5:12")
    p.add_argument("--data", default=None, metavar="FOLDER",
                   help="an image folder root/<class>/<image> (default: the Fashion-MNIST test set)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="both rankings as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import TargetError
    from ..inspect.evaluation import fashion_mnist_test, image_folder
    from ..inspect.examples import example_index
    from ..net.layers import parse_channel
    from ..weights.loader import load

    target = parse_channel(args.target)
    if target.channel is None:
        raise TargetError(f"{target.name} is a whole branch: name one of its channels, e.g. {target.name}:0.")
    loaded = load(options.weights(args), args.device)
    data = image_folder(loaded, args.data) if args.data is not None else fashion_mnist_test(loaded)
    with options.progress_bar("indexing the dataset") as progress:
        index = example_index(loaded, data, progress=progress)
    if args.json:
        options.print_json(index.to_dict(target))
        return 0
    print(f"{loaded.card.name}  |  {target.name}  |  {index.data}")
    for by in ("mean", "max"):
        print(f"\nhighest spatial {by}:")
        print(f"  {'rank':<6}{'image':>7}  {'label':<14}{'value':>9}   where the channel peaks (row, column)")
        for rank, e in enumerate(index.examples(target, by), start=1):
            (r, c), (h, w) = e.position, e.map_size
            label = data.classes[int(data.labels[e.index])] if data.labels[e.index] >= 0 else "?"
            print(f"  {rank:<6}{e.index:>7}  {label:<14}{e.value:>9.4f}   ({r}, {c}) of its {h}x{w} map")
    return 0
