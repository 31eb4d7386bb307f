"""``gnet visualize TARGET --out file.png [--steps N]``: the image that excites a channel, a branch or a class most."""

from __future__ import annotations

import argparse

from . import options

NAME = "visualize"
HELP = "feature visualization: optimize an image for a channel, a branch or a head's class"
ORDER = 62


def configure(p: argparse.ArgumentParser) -> None:
    from ..inspect.features import MAX_STEPS

    p.add_argument("target", help="a channel (inception4c.5x5:12), a branch (inception4c.5x5) or a head's class "
                   "(main:Sneaker, aux1:Sneaker)")
    p.add_argument("--out", required=True, help="where to write the image (PNG)")
    p.add_argument("--steps", type=options.positive_int, default=256,
                   help=f"Adam steps, at most {MAX_STEPS} (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial image and the random transforms")
    p.add_argument("--scale", type=options.positive_int, default=4,
                   help="write the image this many times larger, pixels kept sharp (default 4)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="the target, the objective and its trace as JSON")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import GNetError
    from ..inspect.features import MAX_STEPS, ClassTarget, parse_target, visualize
    from ..weights.loader import load

    if args.steps > MAX_STEPS:
        raise GNetError(f"--steps {args.steps} is too many: use at most {MAX_STEPS}.")
    loaded = load(options.weights(args), args.device)
    target = parse_target(args.target, loaded.classes)
    with options.progress_bar(f"visualizing {target.name}") as progress:
        result = visualize(loaded, target, steps=args.steps, seed=args.seed, progress=progress)
    options.save_png(np.round(result.image * 255).astype(np.uint8), args.out, args.scale)
    if args.json:
        options.print_json({**result.to_dict(), "out": args.out})
        return 0
    if isinstance(target, ClassTarget) and target.head in loaded.card.untrained_heads:
        print(f"warning: head {target.head} is NOT trained in these weights; its class has nothing to show")
    what = "logit" if isinstance(target, ClassTarget) else "spatial-mean activation"
    print(f"{target.name}: {what} {result.activation:.4g} on the final image; objective {result.trace[0]:.4g} at "
          f"the first step, {result.objective:.4g} at the end; {result.steps} steps in {result.seconds:.1f} s; "
          f"wrote {args.out}")
    return 0
