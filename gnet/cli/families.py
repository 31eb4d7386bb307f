"""``gnet families MODULE [--families N] [--images N] [--json]``: a module's channels grouped by what excites them, per branch."""

from __future__ import annotations

import argparse

from . import options

NAME = "families"
HELP = "group a module's channels into families by their activations, and test whether a branch gathers one"
ORDER = 65


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", help="an Inception module, e.g. inception3b")
    p.add_argument("--families", type=int, default=8, help="how many families (k-means clusters, default 8)")
    p.add_argument("--images", type=options.positive_int, default=2000,
                   help="images of the evaluation set that profile each channel (default 2000)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="the families, their members and the test as JSON")


def run(args: argparse.Namespace) -> int:
    from ..inspect.families import families
    from ..net.layers import BRANCHES
    from ..weights.loader import load

    loaded = load(options.weights(args), args.device)
    with options.progress_bar(f"profiling {args.module}'s channels") as progress:
        result = families(loaded, args.module, n_families=args.families, limit=args.images, progress=progress)
    if args.json:
        options.print_json(result.to_dict())
        return 0
    print(f"{loaded.card.name}  |  {result.module}  |  {result.images:,} images of {result.data}")
    print("members per branch (expected by chance in brackets); p: chance of at least that many in the branch "
          "most over-represented, hypergeometric, Bonferroni-corrected")
    header = "".join(f"{b:>15}" for b in BRANCHES)
    print(f"  {'family':<8}{'size':>5}{header}   most in      p")
    for row in result.to_rows():
        cells = "".join(f"{row[b]:>7} ({row[b + '_expected']:>4.1f})" for b in BRANCHES)
        print(f"  {row['family']:<8}{row['channels']:>5}{cells}   {row['most_gathered_in']:<10}{row['p_value']:>6.3f}")
    gathered = result.gathered()
    print("\n" + ("gathered beyond chance (p < 0.05): " + ", ".join(f"family {f} in {b}" for f, b in gathered)
                  if gathered else "no family is gathered in one branch beyond chance (p < 0.05)"))
    return 0
