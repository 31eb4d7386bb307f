"""Command line: ``python -m gnet {analyze,flops,info,train,gradients} ...`` (also ``gnet ...``).

Success exits 0. A user error (:class:`gnet.errors.GNetError`) prints its one sentence
on stderr and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import GNetError

EXIT_USER_ERROR = 2


def _weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        default="auto",
        help="auto (default), bundled, imagenet, random, or a checkpoint file path",
    )


def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: $GNET_DEVICE or auto)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def cmd_analyze(args: argparse.Namespace) -> int:
    from .probe import analyze
    from .weights import load

    loaded = load(args.weights, args.device)
    analysis = analyze(loaded, args.image, top=args.top)
    if args.json:
        _print_json(analysis.to_json())
        return 0
    print(f"{loaded.card.name}  |  device: {analysis.device}")
    for head in loaded.card.untrained_heads:
        print(f"warning: head {head} is NOT trained in these weights; its predictions are noise")
    print()
    width = max(len(p.label) for h in analysis.heads.values() for p in h.top) + 8
    print("".join(f"{name:<{width}}" for name in analysis.heads))
    for rank in range(len(analysis.heads["main"].top)):
        cells = [f"{h.top[rank].label} {h.top[rank].prob:5.1%}" for h in analysis.heads.values()]
        print("".join(f"{c:<{width}}" for c in cells))
    summary = [
        f"{h.name}: entropy {h.entropy:.2f} nats, KL to main {h.kl_to_main:.3f}, "
        f"{'agrees' if h.agrees_with_main else 'disagrees'} with main"
        for h in analysis.heads.values()
        if h.name != "main"
    ]
    print("\n".join(summary))
    print("\nshare of each module's output energy per branch")
    print(f"{'module':<13}{'1x1':>8}{'3x3':>8}{'5x5':>8}{'pool':>8}   output")
    for name, m in analysis.modules.items():
        shares = "".join(f"{b.energy_share:8.1%}" for b in m.branches.values())
        print(f"{name:<13}{shares}   {'x'.join(map(str, m.output_shape))}")
    t = analysis.timing_ms
    print(f"\nforward {t['forward']:.1f} ms, statistics {t['statistics']:.1f} ms, total {t['total']:.1f} ms")
    return 0


def cmd_flops(args: argparse.Namespace) -> int:
    from .flops import flops, paper_table, totals
    from .train import MIN_INPUT_SIZE
    from .weights import load

    if args.input_size < MIN_INPUT_SIZE:
        raise GNetError(
            f"--input-size {args.input_size} is too small: GoogLeNet needs at least {MIN_INPUT_SIZE} pixels."
        )
    net = load(args.weights, "cpu").net
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
        _print_json(
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


def cmd_info(args: argparse.Namespace) -> int:
    from .weights import load

    loaded = load(args.weights, "cpu")
    card = loaded.card.to_dict()
    if args.json:
        _print_json(card)
        return 0
    classes = card.pop("classes")
    for key, value in card.items():
        print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    print(f"classes: {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnet", description="Look inside GoogLeNet (Inception v1).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="one forward pass: heads' top-k and every branch's statistics")
    p.add_argument("image", help="an image file (jpg, png, webp, bmp, gif, tiff)")
    _weights_arg(p)
    _device_arg(p)
    p.add_argument("--top", type=_positive_int, default=5, help="predictions per head (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("flops", help="per-layer and per-branch parameters, multiply-adds and FLOPs")
    _weights_arg(p)
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="rows, totals and the paper's Table 1 as JSON")
    fmt.add_argument("--csv", action="store_true", help="rows as CSV")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("info", help="the model card of a weights source")
    _weights_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    from . import gradients, train

    p = sub.add_parser("train", help="train GoogLeNet with its auxiliary losses (Fashion-MNIST or a folder)")
    train.configure_parser(p)
    p.set_defaults(func=train.run_cli)

    p = sub.add_parser("gradients", help="per-layer gradient norms for each loss (main, aux1, aux2, combined)")
    gradients.configure_parser(p)
    p.set_defaults(func=gradients.run_cli)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
