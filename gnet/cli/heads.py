"""``gnet heads``: aux1, aux2 and main compared over a whole labelled set, and the heads as early exits."""

from __future__ import annotations

import argparse
import csv
import sys

from . import options

NAME = "heads"
HELP = "the three heads over a test set: accuracy, calibration, agreement, early exits"
ORDER = 15


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", default=None, metavar="FOLDER",
        help="an image folder (FOLDER/<class>/<image>) with the weights' class names; default: the Fashion-MNIST "
        "test set for Fashion-MNIST weights, else the sample images",
    )
    options.add_weights(p)
    options.add_device(p)
    p.add_argument("--batch-size", type=options.positive_int, default=256, help="images per forward (default 256)")
    p.add_argument(
        "--no-cache", action="store_true", help="compute the logits afresh; neither read nor write the disk cache"
    )
    p.add_argument("--exits", action="store_true", help="print the early-exit table (aux heads as exits) instead")
    options.add_format(p, json_help="print everything as one JSON object", csv_help="print the table as CSV")


def _progress():
    """A tqdm bar on stderr, created at the first batch (no bar when the logits are shipped or cached)."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="img", desc="heads", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def run(args: argparse.Namespace) -> int:
    from ..heads.early_exit import early_exits, exit_costs
    from ..heads.logits import head_logits
    from ..heads.stats import compare_heads, disagreements
    from ..inspect.evaluation import evaluation_set
    from ..net.cost import flops
    from ..weights.loader import load

    loaded = load(options.weights(args), args.device)
    data = evaluation_set(loaded, args.data)
    logit_set = head_logits(loaded, data, batch_size=args.batch_size, progress=_progress(), cache=not args.no_cache)
    comparison = compare_heads(logit_set, loaded.card.heads_trained)
    curve = early_exits(logit_set, exit_costs(flops(loaded.net, loaded.card.input_size), loaded.card.input_size))
    if args.json:
        options.print_json({
            "model": loaded.card.name,
            "weights_sha256": loaded.weights_hash,
            **logit_set.to_dict(),
            "comparison": comparison.to_dict(),
            "early_exits": curve.to_dict(),
            "disagreements": [d.to_dict() for d in disagreements(logit_set, limit=None)],
        })
        return 0
    rows = _exit_rows(curve) if args.exits else comparison.table()
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return 0
    labelled = logit_set.to_dict()["labelled"]
    print(f"{loaded.card.name}  |  {logit_set.name}, {labelled:,} labelled  |  logits: {logit_set.origin}")
    for head in loaded.card.untrained_heads:
        print(f"warning: head {head} is NOT trained in these weights; its numbers are noise")
    if args.exits:
        _print_exits(curve)
    else:
        _print_table(rows)
    return 0


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def _print_table(rows: list[dict]) -> None:
    print(f"\n{'head':<6}{'top-1':>9}{'top-5':>9}{'ECE':>8}{'mean conf':>11}{'entropy':>9}"
          f"{'= main':>9}{'right, main wrong':>19}{'wrong, main right':>19}")
    for r in rows:
        ece = "n/a" if r["ece"] is None else f"{r['ece']:.4f}"
        print(f"{r['head']:<6}{_pct(r['top1']):>9}{_pct(r['top5']):>9}{ece:>8}{r['mean_confidence']:>11.4f}"
              f"{r['mean_entropy']:>9.4f}{_pct(r['agrees_with_main']):>9}{_pct(r['right_where_main_wrong']):>19}"
              f"{_pct(r['wrong_where_main_right']):>19}")
    print("\nECE: expected calibration error, 15 equal-width confidence bins. Entropy in nats. "
          "'right, main wrong': share of labelled images this head gets right and main gets wrong.")


def _exit_rows(curve) -> list[dict]:
    """The curve's rows after its three reference points, thresholds written as text."""
    how = {"main": "t > 1", "aux1": "t = 0", "aux2": "no aux1"}
    named = [{**p.row(curve.costs), "threshold": f"{head} only ({how[head]})"} for head, p in curve.references.items()]
    return named + [{**row, "threshold": f"{row['threshold']:g}"} for row in curve.table()]


def _print_exits(curve) -> None:
    from ..heads.early_exit import BRANCHYNET

    c = curve.costs
    print(f"\nEarly exits ({BRANCHYNET}). GoogLeNet's paper discards the auxiliary heads at inference: this is an "
          "analysis of them as exits, not the paper's method.")
    print(f"Multiply-adds per {c.input_size} px image: main only {c.main_only / 1e6:.2f} M, aux1 only "
          f"{c.aux1_only / 1e6:.2f} M ({c.aux1_only / c.main_only:.1%} of main); leaving at aux2 "
          f"{c.exit_macs['aux2'] / 1e6:.2f} M, at main with both aux heads {c.exit_macs['main'] / 1e6:.2f} M; "
          f"aux2 only, the net cut at inception4d without aux1, {c.aux2_only / 1e6:.2f} M "
          f"({c.aux2_only / c.main_only:.1%} of main).\n")
    columns = f"{'accuracy':>10}{'mean M MACs':>13}{'of main':>9}{'at aux1':>9}{'at aux2':>9}{'at main':>9}"
    print(f"{'threshold':<19}{columns}")
    for r in _exit_rows(curve):
        print(f"{r['threshold']:<19}{_pct(r['accuracy']):>10}{r['mean_macs'] / 1e6:>13.2f}{r['relative_cost']:>9.1%}"
              f"{r['exit_aux1']:>9.1%}{r['exit_aux2']:>9.1%}{r['exit_main']:>9.1%}")
    half = curve.best_within(0.5)
    if half is None:
        print(f"\nNo threshold costs 50% of main or less: the cheapest exit, aux1, already costs "
              f"{c.aux1_only / c.main_only:.1%} of main.")
    else:
        print(f"\nBest accuracy within 50% of main's cost: {_pct(half.accuracy)} at t = {half.threshold:g}.")
