"""``gnet gradients``: per-layer gradient norms for each loss (main, aux1, aux2, combined).

    gnet gradients [IMAGE] [--weights W] [--no-batch-norm] [--init NAME] [--compare] [--json|--csv]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import DatasetError, GNetError, ImageError
from . import options

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image
    from torch import Tensor

    from ..inspect.gradients import GradientResult
    from ..net.model import GoogLeNet

NAME = "gradients"
HELP = "per-layer gradient norms for each loss (main, aux1, aux2, combined)"
ORDER = 50


def configure(p: argparse.ArgumentParser) -> None:
    from ..net.model import INIT_SCHEMES

    p.add_argument("image", nargs="?", default=None,
                   help="an image file; default: the first --batch-size Fashion-MNIST test images (or the samples)")
    options.add_weights(p)
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="a fresh paper net without batch norm, at initialisation, instead of loaded weights")
    p.add_argument("--init", choices=INIT_SCHEMES, default=None,
                   help="a fresh net with this initialisation instead of loaded weights (default trunc_normal)")
    p.add_argument("--input-size", type=int, default=64, help="input side of a fresh net, in pixels (default 64)")
    p.add_argument("--batch-size", type=int, default=8, help="test images used when no IMAGE is given (default 8)")
    p.add_argument("--eval-mode", action="store_true",
                   help="eval mode (running batch-norm statistics, no dropout) instead of training mode")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh net and of the dropout masks")
    p.add_argument("--compare", action="store_true",
                   help="compare fresh nets with and without batch norm under each --init (all by default), "
                   "and the --weights model if given, on the same input")
    options.add_format(p, csv_help="print the tidy long-format table as CSV")


def _fresh_variant(args: argparse.Namespace) -> tuple[GoogLeNet, Callable[[Image.Image], Tensor], dict, list[str]]:
    from ..data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD
    from ..data.preprocess import GrayscalePreprocess
    from ..inspect.gradients import PAPER_KERNEL
    from ..net.model import check_input_size, googlenet

    check_input_size(args.input_size)
    init = args.init or "trunc_normal"
    net = googlenet(num_classes=len(FASHION_MNIST_CLASSES), batch_norm=args.batch_norm,
                    branch5x5_kernel=PAPER_KERNEL, init=init, seed=args.seed)
    about = {"name": f"fresh GoogLeNet at initialisation ({init}, seed {args.seed})", "weights": "none"}
    transform = GrayscalePreprocess(args.input_size, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    return net, transform, about, list(FASHION_MNIST_CLASSES)


def _loaded_variant(args: argparse.Namespace) -> tuple[GoogLeNet, Callable[[Image.Image], Tensor], dict, list[str]]:
    from ..weights.loader import load

    loaded = load(options.weights(args), "cpu")
    about = {"name": loaded.card.name, "weights": loaded.source, "untrained_heads": loaded.card.untrained_heads}
    return loaded.net, loaded.transform, about, loaded.classes


def _input_batch(
    args: argparse.Namespace, transform: Callable[[Image.Image], Tensor], classes: list[str]
) -> tuple[Tensor, Tensor | None, str]:
    """(inputs, true labels or None, a description): IMAGE, else Fashion-MNIST test images, else the samples."""
    import torch
    from PIL import Image

    from ..data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
    from ..data.images import load_image
    from ..data.samples import sample_images

    if args.image is not None:
        return transform(load_image(args.image)).unsqueeze(0), None, f"image {args.image}"
    if args.batch_size < 1:
        raise GNetError(f"--batch-size {args.batch_size} must be at least 1.")
    labels_fit = list(classes) == list(FASHION_MNIST_CLASSES)  # true labels only mean something to such a net
    try:
        images, labels = load_fashion_mnist("test")
    except DatasetError:
        samples = sample_images()[: args.batch_size]
        if not samples:
            raise ImageError("No input: give an IMAGE file (Fashion-MNIST and the sample images are absent).") from None
        x = torch.stack([transform(load_image(s.path)) for s in samples])
        truths = [s.true_label(classes) for s in samples]
        y = torch.tensor([classes.index(t) for t in truths]) if all(truths) else None
        return x, y, f"{len(samples)} sample images ({', '.join(s.name for s in samples)})"
    n = min(args.batch_size, len(images))
    x = torch.stack([transform(load_image(Image.fromarray(im.numpy(), mode="L"))) for im in images[:n]])
    return x, labels[:n] if labels_fit else None, f"the first {n} Fashion-MNIST test images"


def _print_table(result: GradientResult) -> None:
    from ..inspect.gradients import LOSSES

    v = result.variant
    cfg = v["config"]
    print(f"{v['name']}  |  weights: {v['weights']}  |  batch norm: {'yes' if cfg['batch_norm'] else 'no'}  |  "
          f"init: {cfg['init']}  |  5x5 kernel: {cfg['branch5x5_kernel']}")
    mode = "training mode (batch statistics, " + (f"dropout seeded {v['seed']})" if v["dropout"] else "no dropout)")
    print(f"input: {v['input']} ({'x'.join(map(str, v['input_shape']))}), targets: {v['targets']}, "
          f"{mode if v['mode'] == 'training' else 'eval mode'}")
    for head in v.get("untrained_heads", []):
        print(f"warning: head {head} is NOT trained in these weights")
    print("losses: " + ", ".join(f"{k} {val:.4f}" for k, val in result.losses.items()))
    weight = result.table("weight")
    width = int(weight["layer"].str.len().max()) + 2
    for quantity, title in (("weight", "weight-gradient norm ||dL/dW||"),
                            ("activation", "activation-gradient norm ||dL/dY|| (layer output, whole batch)")):
        print(f"\n{title}")
        print(f"{'layer':<{width}}" + "".join(f"{loss:>11}" for loss in LOSSES))
        for r in result.table(quantity).to_dict(orient="records"):
            print(f"{r['layer']:<{width}}" + "".join(f"{r[loss]:>11.2e}" for loss in LOSSES))
    conv1 = weight.iloc[0]
    if conv1["main"] > 0:
        print(f"\nconv1 weight gradient, with aux / without aux (combined / main): "
              f"{conv1['combined'] / conv1['main']:.3g}x")


def _print_comparison(frame: pd.DataFrame) -> None:
    from ..inspect.gradients import aux_ratio
    from ..net.layers import AUX_ATTACH, WEIGHT_LAYERS

    weights = frame[frame["quantity"] == "weight"]
    first = WEIGHT_LAYERS[0].name
    ratios = aux_ratio(weights)
    stem = ratios[ratios["layer"] == first].set_index(["variant", "init"])["ratio"]
    conv1 = weights[weights["layer"] == first].pivot_table(
        index=["variant", "init"], columns="loss", values="norm", sort=False
    )
    print(f"{first} weight-gradient norm without aux (main) and with aux (main + 0.3 x (aux1 + aux2))")
    print(f"{'variant':<9}{'init':<14}{'main':>11}{'combined':>11}{'with/without':>14}")
    for (variant, init), row in conv1.iterrows():
        print(f"{variant:<9}{init:<14}{row['main']:>11.2e}{row['combined']:>11.2e}{stem[variant, init]:>13.3g}x")
    attach = AUX_ATTACH["aux1"]
    print(f"\nmedian with/without-aux ratio of the weight gradient over the layers below aux1 (stem to {attach})")
    last = max(p.depth for p in WEIGHT_LAYERS if p.module == attach)
    below = ratios[ratios["depth"] <= last]
    for (variant, init), r in below.groupby(["variant", "init"], sort=False)["ratio"]:
        print(f"{variant:<9}{init:<14}{r.median():>11.3g}x")


def _check_batch_statistics(x: Tensor, *, batch_norm: bool, training: bool) -> None:
    """Refuse an input on which batch norm in training mode would see one value per channel."""
    from ..net.model import batch_statistics_defined

    if batch_norm and training and not batch_statistics_defined(x.shape[0], min(x.shape[-2:])):
        raise GNetError("Batch norm in training mode needs more than one value per channel: "
                        "use --eval-mode, a larger input, or no IMAGE (a batch of test images).")


def _run_comparison(args: argparse.Namespace) -> None:
    from ..inspect.gradients import compare_variants
    from ..net.model import INIT_SCHEMES

    if not args.batch_norm:
        raise GNetError("--compare runs the nets with and without batch norm itself: drop --no-batch-norm.")
    loaded_net = None
    if args.weights is not None:
        loaded_net, transform, _, classes = _loaded_variant(args)
    else:
        _, transform, _, classes = _fresh_variant(args)
    x, y, _ = _input_batch(args, transform, classes)
    _check_batch_statistics(x, batch_norm=True, training=not args.eval_mode)  # the "bn" variants always run
    inits = (args.init,) if args.init else INIT_SCHEMES
    frame = compare_variants(x, y, loaded_net=loaded_net, inits=inits, seed=args.seed,
                             num_classes=len(classes), training=not args.eval_mode)
    if args.json:
        json.dump(frame.to_dict(orient="records"), sys.stdout)
        sys.stdout.write("\n")
    elif args.csv:
        frame.to_csv(sys.stdout, index=False, float_format="%.4g")
    else:
        _print_comparison(frame)


def run(args: argparse.Namespace) -> int:
    from ..inspect.gradients import layer_gradients

    if args.compare:
        _run_comparison(args)
        return 0
    fresh = not args.batch_norm or args.init is not None
    if fresh and args.weights is not None:
        raise GNetError(
            "--weights loads trained weights; --no-batch-norm and --init build a fresh net: give one or the other."
        )
    net, transform, about, classes = _fresh_variant(args) if fresh else _loaded_variant(args)
    x, y, described = _input_batch(args, transform, classes)
    _check_batch_statistics(x, batch_norm=net.config.batch_norm, training=not args.eval_mode)
    result = layer_gradients(net, x, y, training=not args.eval_mode, seed=args.seed)
    result = replace(result, variant={**about, "input": described, **result.variant})
    if args.json:
        options.print_json(result.to_dict())
    elif args.csv:
        result.to_frame().to_csv(sys.stdout, index=False, float_format="%.4g")
    else:
        _print_table(result)
    return 0
