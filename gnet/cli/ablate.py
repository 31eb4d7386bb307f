"""``gnet ablate IMAGE --off inception4c.5x5 [--off inception4d.pool_proj:3]``: the heads with branches knocked out.

Single channels can be knocked out too (``MODULE.BRANCH:CHANNEL``); every head's top-k is shown
with and without the knock-outs, and how far each head's distribution moved.
"""

from __future__ import annotations

import argparse

from . import options

NAME = "ablate"
HELP = "the three heads' top-k with branches or single channels knocked out (zeroed)"
ORDER = 60


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="an image file (jpg, png, webp, bmp, gif, tiff)")
    p.add_argument("--off", action="append", required=True, metavar="TARGET",
                   help="a branch (inception4c.5x5) or channel (inception4d.pool_proj:3) to zero; repeat for more")
    options.add_weights(p)
    options.add_device(p)
    p.add_argument("--top", type=options.positive_int, default=5, help="predictions per head (default 5)")
    options.add_format(p, json_help="intact and knocked-out predictions and the change, as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..inspect.ablation import ablate, parse_knockouts
    from ..net.layers import HEADS
    from ..weights.loader import load

    knockouts = parse_knockouts(args.off)  # a bad name fails before the weights load
    loaded = load(options.weights(args), args.device)
    x = loaded.preprocess(args.image)
    intact = ablate(loaded, x, top=args.top)
    knocked = ablate(loaded, x, knockouts, top=args.top)
    change = knocked.change(intact)
    if args.json:
        options.print_json({"intact": intact.to_dict(), "knocked_out": knocked.to_dict(), "change": change})
        return 0
    print(f"{loaded.card.name}  |  knocked out: {', '.join(knocked.knockouts)}")
    for head in loaded.card.untrained_heads:
        print(f"warning: head {head} is NOT trained in these weights; its predictions are noise")
    for head in HEADS:
        c = change[head]
        verdict = "top-1 changed" if c["top1_changed"] else "same top-1"
        print(f"\n{head}: {verdict}; {c['top1_intact']} {c['prob_of_intact_top1_intact']:.1%} -> "
              f"{c['prob_of_intact_top1']:.1%}, total variation {c['total_variation']:.3f}")
        width = max(len(p.label) for p in intact.top[head] + knocked.top[head]) + 8
        print(f"  {'intact':<{width}}knocked out")
        for before, after in zip(intact.top[head], knocked.top[head]):
            print(f"  {f'{before.label} {before.prob:6.1%}':<{width}}{after.label} {after.prob:6.1%}")
    return 0
