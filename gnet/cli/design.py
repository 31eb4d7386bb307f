"""``gnet design``: GoogLeNet's design choices flipped, each measured beside the paper's design (:mod:`gnet.net.design`)."""

from __future__ import annotations

import argparse
import csv
import sys

from . import options

NAME = "design"
HELP = "flip the stem, the 1x1 reductions, global average pooling or the aux heads; measure against the paper's"
ORDER = 21


def configure(p: argparse.ArgumentParser) -> None:
    options.add_design(p)
    p.add_argument("--no-aux", dest="aux", action="store_false", help="trained without the auxiliary heads")
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes of the three heads (default 1,000)")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="skip the timing")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip measuring the tensors saved for backward")
    p.add_argument("--batch-sizes", type=options.positive_int, nargs="+", default=[1], metavar="N",
                   help="batch sizes to time (default 1; the bench times 1 and 32)")
    p.add_argument("--repeats", type=options.positive_int, default=5, help="timed passes per design (median)")
    options.add_device(p)
    options.add_format(p, json_help="the comparison as JSON", csv_help="one row per design as CSV")


def run(args: argparse.Namespace) -> int:
    from ..net.design import CHOICES, PAPER, Design, compare_designs

    chosen = Design(stem=args.stem, reductions=args.reductions, pool_proj=args.pool_proj,
                    classifier=args.classifier, aux=args.aux)
    designs = CHOICES if chosen == PAPER else (chosen,)
    with options.progress_bar("measuring") as progress:
        result = compare_designs(
            designs, input_size=args.input_size, num_classes=args.num_classes, memory=args.memory,
            latency=args.latency, batch_sizes=args.batch_sizes, repeats=args.repeats, device=args.device,
            progress=progress,
        )
    table = result.table()
    if args.json:
        options.print_json(result.to_dict())
        return 0
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(table[-1]))
        writer.writeheader()
        writer.writerows(table)
        return 0
    _print(result, table)
    return 0


def _print(result, table: list[dict]) -> None:
    where = f", timed on {result.latency.device}" if result.latency else ""
    print(f"GoogLeNet designs at {result.input_size} px, {result.num_classes:,} classes{where}; ratios to the paper's\n")
    columns = [("params", "params (M)", 1e6), ("macs", "test MMACs", 1e6)]
    if result.activation_bytes is not None:
        columns.append(("activation", "saved MiB", 2**20))
    if result.latency is not None:
        for b in sorted({r["batch_size"] for r in result.latency.rows}):
            columns += [(f"forward_b{b}", f"fwd b{b} ms", 1e-3), (f"train_b{b}", f"train b{b} ms", 1e-3)]
    print(f"{'design':<28}" + "".join(f"{title:>19}" for _, title, _ in columns))
    for row in table:
        cells = []
        for key, _, unit in columns:
            value = row.get(f"{key}_s", row.get(f"{key}_bytes", row.get(key)))
            ratio = row.get(f"{key}_ratio", row.get(f"{key.rstrip('s')}s_ratio"))
            cells.append(f"{value / unit:>11,.1f} {ratio:>6.2f}x")
        print(f"{row['design']:<28}" + "".join(cells))
    print()
    for name, found in result.claims.items():
        for c in found:
            print(f"{name}: {'as claimed' if c.holds else 'NOT as claimed'}. {c.claim}\n    {c.measured}")
