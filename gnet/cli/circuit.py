"""``gnet circuit TARGET [--down] [--k N] [--image IMG | --dataset] [--json]``: the channels that build a channel, or that it feeds."""

from __future__ import annotations

import argparse

from . import options

NAME = "circuit"
HELP = "the channels of the module below that build a channel most (or, with --down, the ones it feeds)"
ORDER = 64


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a channel, e.g. inception4a.3x3:12")
    p.add_argument("--down", action="store_true",
                   help="the channels of the next module this channel feeds, instead of those it is built from")
    p.add_argument("--k", type=int, default=8, help="connections shown each way, excitatory and inhibitory (default 8)")
    p.add_argument("--method", choices=("weights", "gradient"), default="weights",
                   help="expanded weights from the weights' product (default) or from the linearized net's gradient")
    used = p.add_mutually_exclusive_group()
    used.add_argument("--image", default=None, metavar="IMG",
                      help="rank by what each connection contributes on this image (integrated gradients)")
    used.add_argument("--dataset", action="store_true",
                      help="rank by the mean contribution over the evaluation set's first --images images")
    p.add_argument("--images", type=options.positive_int, default=256,
                   help="images of the evaluation set for --dataset (default 256)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="the circuit as JSON, kernels included")


def run(args: argparse.Namespace) -> int:
    from ..data.images import load_image
    from ..errors import TargetError
    from ..inspect import circuits
    from ..inspect.contributions import contributions
    from ..weights.loader import load

    if args.down and (args.image or args.dataset):
        raise TargetError("--image and --dataset rank what builds a channel: leave out --down, or leave them out.")
    loaded = load(options.weights(args), args.device)
    if args.image is not None:
        x = loaded.transform(load_image(args.image))[None]
        circuit = contributions(loaded, args.target, x, k=args.k)
    elif args.dataset:
        with options.progress_bar("integrating gradients over the set") as progress:
            circuit = contributions(loaded, args.target, k=args.k, limit=args.images, progress=progress)
    elif args.down:
        circuit = circuits.downstream(loaded, args.target, k=args.k, method=args.method)
    else:
        circuit = circuits.upstream(loaded, args.target, k=args.k, method=args.method)
    if args.json:
        options.print_json(circuit.to_dict())
        return 0
    way = "feeds, in" if circuit.direction == "downstream" else "is built from, in"
    print(f"{loaded.card.name}  |  {circuit.target} {way} {circuit.other}  |  {circuit.method}")
    if circuit.data:
        d = circuit.data
        print(f"over {d['set']}: activation {d['activation']:.4g}, baseline (all-zero {circuit.other}) "
              f"{d['baseline']:.4g}; contributions sum to {d['sum_of_contributions']:.4g} "
              f"(integration error {d['delta']:.2g})")
    else:
        print(f"approximation: {circuit.approximation}")
    for title, rows in (("excites", circuit.excite), ("inhibits", circuit.inhibit)):
        print(f"\n{title}:")
        value = "contribution" if circuit.data else "weight"
        print(f"  {'rank':<6}{'channel':<28}{value:>13}{'weight' if circuit.data else '':>10}")
        for rank, c in enumerate(rows, start=1):
            extra = f"{c.weight:>10.4f}" if circuit.data else ""
            shown = c.contribution if c.contribution is not None else c.weight
            print(f"  {rank:<6}{c.channel:<28}{shown:>13.4f}{extra}")
        if not rows:
            print("  (none)")
    return 0
