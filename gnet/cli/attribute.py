"""``gnet attribute IMAGE [TARGET] --out map.png [--method M] [--layer MODULE.BRANCH]``: what a class rests on."""

from __future__ import annotations

import argparse

from . import options

NAME = "attribute"
HELP = "attributions (captum): which pixels a head's class depends on, drawn over the image as a PNG"
ORDER = 12


def configure(p: argparse.ArgumentParser) -> None:
    from ..inspect.attributions import GRAD_CAM_BRANCH, GRAD_CAM_MIN_SIZE, METHODS

    p.add_argument("image", help="an image file (jpg, png, webp, bmp, gif, tiff)")
    p.add_argument("target", nargs="?", default="main",
                   help="main (default), aux1 or aux2, each at its own top-1 class; or HEAD:CLASS "
                        "(main:Sneaker, aux1:3)")
    p.add_argument("--out", required=True, help="where to write the map over the image the network saw (PNG)")
    p.add_argument("--method", choices=tuple(METHODS), default="grad_cam",
                   help="grad_cam (default): one branch's evidence; saliency: the input gradient; "
                        "integrated_gradients: with a NoiseTunnel")
    p.add_argument("--layer", default=None, metavar="MODULE.BRANCH",
                   help=f"Grad-CAM's branch, e.g. inception4c.5x5 (default: the deepest module the head reads with "
                        f"maps of {GRAD_CAM_MIN_SIZE}x{GRAD_CAM_MIN_SIZE} or more, branch {GRAD_CAM_BRANCH})")
    p.add_argument("--steps", type=options.positive_int, default=16,
                   help="Integrated Gradients' steps along the path (default 16)")
    p.add_argument("--samples", type=options.positive_int, default=4,
                   help="Integrated Gradients' noisy copies (NoiseTunnel, default 4)")
    p.add_argument("--scale", type=options.positive_int, default=4,
                   help="write the image this many times larger, pixels kept sharp (default 4)")
    options.add_weights(p)
    options.add_device(p)
    options.add_format(p, json_help="the settings and the map's summary as JSON",
                       csv_help="the map itself as CSV (one line per row of pixels, values in [0, 1])")


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from ..errors import GNetError, TargetError
    from ..heads.in_domain import in_domain
    from ..inspect.attributions import attribute
    from ..inspect.drawing import overlay_image
    from ..inspect.features import parse_target
    from ..inspect.probe import analyze
    from ..net.layers import BRANCHES, HEADS
    from ..weights.loader import load

    if args.layer is not None and args.method != "grad_cam":
        raise GNetError(f"--layer chooses Grad-CAM's branch, and {args.method} reads none: drop --layer, or use "
                        "--method grad_cam.")
    loaded = load(options.weights(args), args.device)
    head, target = args.target, None
    if head not in HEADS:
        if args.target.split(":", 1)[0].strip() not in HEADS:
            raise TargetError(f"{args.target!r} is not a head or a head's class: write main, aux1, aux2 or HEAD:CLASS "
                              f"(main:{loaded.classes[0]}).")
        chosen = parse_target(args.target, loaded.classes)  # HEAD:CLASS, a class by name or index
        head, target = chosen.head, chosen.index
    analysis = analyze(loaded, args.image)  # the image as the network saw it, each head's top-1 and each map's size
    predicted = analysis.heads[head]
    target = predicted.top[0].index if target is None else target
    module, branch = _grad_cam_layer(args, head, analysis) if args.method == "grad_cam" else (None, None)
    x = analysis.input.unsqueeze(0)
    settings = {"module": module, "branch": branch} if module else {}
    if args.method == "integrated_gradients":
        settings = {"n_steps": args.steps, "nt_samples": args.samples}
    with options.progress_bar(f"{args.method} for {head}") as progress:
        result = attribute(loaded, x, args.method, head=head, target=target, progress=progress, **settings)
    size = options.save_png(overlay_image(analysis.image, result.heatmap), args.out, args.scale)
    if args.csv:
        np.savetxt(sys.stdout, result.heatmap, fmt="%.4f", delimiter=",")
        return 0
    # For an empty Grad-CAM map, the other branches of its module that do find evidence (one pass each).
    elsewhere = None
    if result.blank and module:
        elsewhere = [b for b in BRANCHES if b != branch and not attribute(
            loaded, x, "grad_cam", head=head, target=target, module=module, branch=b).blank]
    heat = result.heatmap
    peak = np.unravel_index(int(heat.argmax()), heat.shape)
    focus = float((heat >= heat.max() / 2).mean()) if heat.any() else 0.0
    probability = float(predicted.probs[target])
    if args.json:
        options.print_json({**result.to_dict(), "probability": probability, "top1": predicted.top[0].index == target,
                            "blank": result.blank, "peak": [int(i) for i in peak], "above_half_peak": focus,
                            "branches_with_evidence": elsewhere, "out": args.out})
        return 0
    if head in loaded.card.untrained_heads:
        print(f"warning: head {head} is NOT trained in these weights; its map explains noise")
    domain = in_domain(loaded, analysis)
    if domain is not None and not domain.in_domain:
        print(options.out_of_domain_warning(domain, loaded, "the class this map explains means little"))
    rank = "its top-1 class" if predicted.top[0].index == target else f"top-1 is {predicted.top[0].label}"
    took = f"{result.seconds:.1f} s" if result.seconds >= 1 else f"{result.seconds * 1e3:.0f} ms"
    print(f"{result.title} ({head} gives it {probability:.1%}, {rank}); {took}")
    if not result.blank:
        print(f"peak at row {peak[0]}, column {peak[1]} of the {heat.shape[0]} x {heat.shape[1]} input; "
              f"{focus:.0%} of the image is above half the peak")
    elif module:
        print(f"warning: the map is empty: on {result.layer}, no position supports {result.target_label} (Grad-CAM "
              f"keeps only positive evidence); {_elsewhere(module, elsewhere)}")
    else:
        print(f"warning: the map is empty: the {head} head's {result.target_label} score does not change with any "
              "pixel")
    print(f"wrote {args.out} ({size[0]} x {size[1]})")
    return 0


def _grad_cam_layer(args: argparse.Namespace, head: str, analysis) -> tuple[str, str]:
    """Grad-CAM's module and branch: ``--layer``, else where the app's page starts for ``head``."""
    from ..errors import TargetError
    from ..inspect.attributions import GRAD_CAM_BRANCH, grad_cam_module
    from ..net.layers import modules_read_by, parse_channel

    if args.layer is None:
        return grad_cam_module(head, {name: m.output_shape for name, m in analysis.modules.items()}), GRAD_CAM_BRANCH
    layer = parse_channel(args.layer)
    if layer.channel is not None:
        raise TargetError(f"Grad-CAM explains a whole branch: write --layer {layer.module}.{layer.branch}.")
    readable = modules_read_by(head)
    if layer.module not in readable:
        raise TargetError(f"{head} branches off before {layer.module}, so {layer.module} cannot explain it: choose a "
                          f"module from inception3a to {readable[-1]}.")
    return layer.module, layer.branch


def _elsewhere(module: str, branches: list[str]) -> str:
    """What to try after an empty Grad-CAM map, given the branches of ``module`` whose maps are not empty."""
    from ..inspect.attributions import evidence_elsewhere

    how = f"try --layer {module}.{branches[0]}" if branches else "try another module"
    return f"{evidence_elsewhere(module, branches)}: {how}"
