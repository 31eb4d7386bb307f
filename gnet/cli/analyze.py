"""``gnet analyze IMAGE``: one forward pass, the heads' top-k side by side and every branch's statistics."""

from __future__ import annotations

import argparse

from . import options

NAME = "analyze"
HELP = "one forward pass: heads' top-k and every branch's statistics"
ORDER = 10


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="an image file (jpg, png, webp, bmp, gif, tiff)")
    options.add_weights(p)
    options.add_device(p)
    p.add_argument("--top", type=options.positive_int, default=5, help="predictions per head (default 5)")
    options.add_format(p)


def run(args: argparse.Namespace) -> int:
    from ..heads.in_domain import NO_SCORE, in_domain
    from ..inspect.probe import analyze
    from ..weights.loader import load

    loaded = load(options.weights(args), args.device)
    analysis = analyze(loaded, args.image, top=args.top)
    domain = in_domain(loaded, analysis)
    if args.json:
        no_score = {"score": None, "percentile": None, "in_domain": None, "note": NO_SCORE}
        options.print_json({**analysis.to_dict(), "in_domain": domain.to_dict() if domain else no_score})
        return 0
    print(f"{loaded.card.name}  |  device: {analysis.device}")
    for head in loaded.card.untrained_heads:
        print(f"warning: head {head} is NOT trained in these weights; its predictions are noise")
    if domain is None:
        print(f"note: {NO_SCORE}")
    elif not domain.in_domain:
        print(options.out_of_domain_warning(domain, loaded, "these labels mean little"))
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
