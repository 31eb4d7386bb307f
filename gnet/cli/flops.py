"""``gnet flops``: per-layer and per-branch parameters, multiply-adds and FLOPs, and the paper's Table 1."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from . import options

NAME = "flops"
HELP = "per-layer and per-branch parameters, multiply-adds and FLOPs"
ORDER = 20


def configure(p: argparse.ArgumentParser) -> None:
    options.add_weights(p)
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    options.add_format(p, json_help="rows, totals and the paper's Table 1 as JSON", csv_help="rows as CSV")


def run(args: argparse.Namespace) -> int:
    from ..net.cost import flops, totals
    from ..net.model import check_input_size
    from ..net.table1 import paper_table
    from ..weights.loader import load

    check_input_size(args.input_size)
    net = load(options.weights(args), "cpu").net
    rows = flops(net, input_size=args.input_size)
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0].to_dict()))
        writer.writeheader()
        for r in rows:
            d = r.to_dict()
            d["out_shape"] = "x".join(map(str, d["out_shape"]))
            writer.writerow(d)
        return 0
    total = totals(rows)
    if args.json:
        paper = paper_table(net, input_size=args.input_size)
        options.print_json(
            {
                "input_size": args.input_size,
                "convention": "macs = multiply-adds of conv/linear; flops = 2 x macs; other_ops = pool/norm/act",
                "total": total,
                "rows": [r.to_dict() for r in rows],
                "paper": json.loads(paper.to_json(orient="records")),
            }
        )
        return 0
    print(f"{'layer':<32}{'kind':<8}{'output':>16}{'params':>12}{'MMACs':>10}")
    for r in rows:
        if r.kind in ("conv", "linear"):
            shape = "x".join(map(str, r.out_shape))
            print(f"{r.name:<32}{r.kind:<8}{shape:>16}{r.params:>12,}{r.macs / 1e6:>10.2f}")
    print(
        f"\ntotal: {total['params']:,} params, {total['macs'] / 1e9:.3f} G multiply-adds, "
        f"{total['flops'] / 1e9:.3f} GFLOPs (2 per multiply-add), {total['other_ops'] / 1e6:.1f} M other ops "
        f"(pooling, normalization, activations) at {args.input_size}x{args.input_size}"
    )
    return 0
