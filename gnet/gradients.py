"""Per-layer gradient magnitudes for each of GoogLeNet's losses, from one forward pass.

GoogLeNet (Szegedy et al. 2014, arXiv:1409.4842, section 5) attaches two auxiliary
classifiers to intermediate layers and trains on main + 0.3 x (aux1 + aux2), to push
gradient back into the early layers of a deep net that had no batch normalization.
:func:`layer_gradients` measures, for every convolution and linear layer, the L2 norm of
the gradient of each loss choice with respect to the layer's weight and to its output
(the "activation gradient"); :func:`compare_variants` runs that measurement on the
loaded model and on fresh nets with and without batch norm, under each initialisation.

Conventions, pinned by tests/gnet/test_gradients.py:

- weight norm: ``||dL/dW||_2`` over the layer's weight tensor (the bias is left out, as in
  the training log of :mod:`gnet.train`); activation norm: ``||dL/dY||_2`` over the whole
  batch of the layer's raw output Y (before batch norm and ReLU).
- every loss is the batch-mean cross-entropy, as in training; a layer that a loss does
  not reach (the aux heads for ``main``, everything after inception4a for ``aux1``) has
  norm 0.
- ``combined`` = main + 0.3 x (aux1 + aux2). Its gradients are summed from the other
  three (gradients are linear in the loss), which is exact and saves a fourth backward.
- by default the net runs in training mode, as during training: batch norm normalizes
  with the batch's statistics and dropout is active. Dropout draws its masks from a
  seeded generator (``seed``), so a call is reproducible and leaves the caller's RNG
  alone; ``dropout=False`` switches it off. Batch norm's running statistics, which a
  training-mode forward would update, are restored afterwards: the model is unchanged.
  Eval mode suits trained nets only: at initialisation the running statistics are still
  (mean 0, variance 1), so in eval mode batch norm is nearly the identity and a fresh net
  with batch norm shows the same vanishing gradients as one without.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn

from .errors import DatasetError, GNetError, ImageError
from .guard import exclusive, seeded
from .model import HEADS, INIT_SCHEMES, GoogLeNet, googlenet
from .probe import capture
from .train import AUX_WEIGHT, MIN_INPUT_SIZE, batch_statistics_defined, head_losses, named_weight_layers

__all__ = [
    "LOSSES",
    "QUANTITIES",
    "GradientResult",
    "aux_ratio",
    "compare_variants",
    "configure_parser",
    "layer_gradients",
    "layer_kind",
    "run_cli",
]

LOSSES: tuple[str, ...] = ("main", "aux1", "aux2", "combined")
QUANTITIES: tuple[str, ...] = ("weight", "activation")
PAPER_KERNEL = 5  # the fresh variants use the paper's 5x5 kernel, not torchvision's 3 (pytorch/vision#906)
_STEM = ("conv1", "conv2", "conv3")


@dataclass(frozen=True)
class GradientResult:
    """Gradient norms of every conv/linear layer for each loss, from one forward pass.

    ``layers`` holds one row per layer, in forward order: ``{"name", "depth", "kind",
    "module", "weight": {loss: norm}, "activation": {loss: norm}}``. ``depth`` is the
    layer's position in that order; the aux heads' layers sit right after the module
    they branch from (inception4a, inception4d), and ``kind`` ("stem", "inception",
    "aux", "classifier") lets a plot of the main path leave them out.
    """

    variant: dict[str, Any]
    losses: dict[str, float]
    layers: list[dict[str, Any]]

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (layer, loss, quantity) with columns
        layer, depth, kind, module, loss, quantity, norm."""
        rows = [
            {
                "layer": row["name"], "depth": row["depth"], "kind": row["kind"], "module": row["module"],
                "loss": loss, "quantity": quantity, "norm": row[quantity][loss],
            }
            for row in self.layers
            for quantity in QUANTITIES
            for loss in LOSSES
        ]
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        """``{"variant", "losses", "layers": [weight norms], "activation": [activation norms]}``;
        each list holds ``{"name", "depth", "kind", "main", "aux1", "aux2", "combined"}``."""

        def table(quantity: str) -> list[dict[str, Any]]:
            return [
                {"name": r["name"], "depth": r["depth"], "kind": r["kind"], **r[quantity]} for r in self.layers
            ]

        return {"variant": self.variant, "losses": self.losses, "layers": table("weight"),
                "activation": table("activation")}


def layer_kind(module: str) -> str:
    """Where a top-level module sits: "stem", "inception", "aux" or "classifier"."""
    if module in _STEM:
        return "stem"
    if module.startswith("inception"):
        return "inception"
    if module.startswith("aux"):
        return "aux"
    return "classifier"


@contextmanager
def _buffers_restored(net: nn.Module) -> Iterator[None]:
    """Put every buffer (batch norm's running statistics) back as it was on exit."""
    saved = [(b, b.clone()) for b in net.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed the RNG dropout draws from (see :func:`gnet.guard.seeded`); ``None`` leaves it alone."""
    if seed is None:
        yield
        return
    with seeded(seed, device):
        yield


def _norm(g: Tensor | None) -> float:
    # float64: without batch norm, early gradients can be ~1e-20 per entry and their
    # float32 squares would underflow to zero.
    return 0.0 if g is None else float(g.detach().double().norm())


def _scaled_sum(total: Tensor | None, g: Tensor | None, weight: float) -> Tensor | None:
    if g is None:
        return total
    return weight * g if total is None else total + weight * g


def _norms_per_loss(losses: Mapping[str, Tensor], tensors: Sequence[Tensor]) -> dict[str, list[float]]:
    """{loss: [norm of d loss / d tensor]} for the three heads, plus the combined loss by linearity."""
    norms: dict[str, list[float]] = {}
    combined: list[Tensor | None] = [None] * len(tensors)
    for i, head in enumerate(HEADS):
        last = i == len(HEADS) - 1
        grads = torch.autograd.grad(losses[head], tensors, retain_graph=not last, allow_unused=True)
        norms[head] = [_norm(g) for g in grads]
        weight = 1.0 if head == "main" else AUX_WEIGHT
        combined = [_scaled_sum(c, g, weight) for c, g in zip(combined, grads)]
    norms["combined"] = [_norm(c) for c in combined]
    return norms


def _rows(names: Sequence[str], norms: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """GradientResult rows from norms listed as [weights of every layer..., outputs of every layer...]."""
    n = len(names)
    rows = []
    for depth, name in enumerate(names):
        module = name.split(".")[0]
        rows.append({
            "name": name, "depth": depth, "kind": layer_kind(module), "module": module,
            "weight": {loss: norms[loss][depth] for loss in LOSSES},
            "activation": {loss: norms[loss][n + depth] for loss in LOSSES},
        })
    return rows


def layer_gradients(
    net: GoogLeNet,
    x: Tensor,
    targets: Tensor | None = None,
    *,
    training: bool = True,
    dropout: bool = True,
    seed: int | None = 0,
) -> GradientResult:
    """Weight- and activation-gradient norms of every layer for each loss in :data:`LOSSES`.

    One forward pass of ``x`` (N x 3 x H x W) builds the graph; three backward passes
    through it (``retain_graph``) give main, aux1 and aux2, and their weighted sum gives
    combined. ``targets`` (N class indices) are the true labels when known; when None,
    the main head's prediction is used. ``training`` picks batch norm's batch statistics
    and active dropout (True, as in training) or eval mode; ``dropout=False`` turns
    dropout off in training mode; ``seed`` seeds the dropout masks (None: the global RNG).
    The net's mode, hooks and buffers are as before when this returns or raises.
    """
    layers = named_weight_layers(net)
    points = dict(layers)
    device = next(net.parameters()).device
    x = x.to(device)
    with (
        exclusive(net, training=training),
        _buffers_restored(net),
        torch.enable_grad(),
        _seeded(seed, device),
    ):
        if not dropout:
            for m in net.modules():
                if isinstance(m, nn.Dropout):
                    m.eval()  # exclusive() restores every submodule's mode on exit
        with capture(net, points, detach=False) as outputs:
            out = net(x)
        missing = [name for name in points if name not in outputs]
        if missing:
            raise RuntimeError(f"layer {missing[0]!r} did not run in the forward pass")
        y = out.main.detach().argmax(1) if targets is None else targets.to(device)
        losses = head_losses(out, y)
        names = [name for name, _ in layers]
        tensors = [m.weight for _, m in layers] + [outputs[name] for name in names]
        norms = _norms_per_loss(losses, tensors)
    loss_values = {head: float(losses[head].detach()) for head in HEADS}
    loss_values["combined"] = float(losses["total"].detach())
    variant = {
        "config": net.config.to_dict(),
        "mode": "training" if training else "eval",
        "dropout": bool(training and dropout),
        "seed": seed,
        "input_shape": list(x.shape),
        "targets": "predicted" if targets is None else "labels",
    }
    return GradientResult(variant=variant, losses=loss_values, layers=_rows(names, norms))


# ---------------------------------------------------------------------------------------------
# The comparisons that tell the story


def compare_variants(
    x: Tensor,
    targets: Tensor | None = None,
    *,
    loaded_net: GoogLeNet | None = None,
    inits: Sequence[str] = INIT_SCHEMES,
    seed: int = 0,
    num_classes: int | None = None,
    training: bool = True,
    dropout: bool = True,
) -> pd.DataFrame:
    """Gradient norms on the same input for (a) ``loaded_net`` if given, (b) the paper's net
    without batch norm at initialisation and (c) the same net with batch norm, (b) and (c)
    under each scheme of ``inits``, for every loss (``main`` = without the auxiliary losses,
    ``combined`` = with them).

    Fresh nets use the paper's 5x5 kernel and ``seed``; ``num_classes`` defaults to the
    loaded net's, else 10 (Fashion-MNIST). Returns one tidy row per (variant, init, loss,
    layer) with columns variant ("loaded", "no_bn", "bn"), batch_norm, init ("loaded" for
    the loaded net), loss, layer, depth, kind, weight_norm, activation_norm. Cost: one
    forward and three backwards per net; on a CPU keep ``x`` small (8 images at 64 px:
    about a second per net).
    """
    bad = [i for i in inits if i not in INIT_SCHEMES]
    if bad:
        raise ValueError(f"unknown init {bad[0]!r}; choose from {INIT_SCHEMES}")
    if num_classes is None:
        num_classes = loaded_net.config.num_classes if loaded_net is not None else 10
    runs: list[tuple[str, bool, str, GoogLeNet]] = []
    if loaded_net is not None:
        runs.append(("loaded", loaded_net.config.batch_norm, "loaded", loaded_net))
    for init in inits:
        for name, bn in (("no_bn", False), ("bn", True)):
            net = googlenet(num_classes=num_classes, batch_norm=bn, branch5x5_kernel=PAPER_KERNEL, init=init, seed=seed)
            runs.append((name, bn, init, net.to(x.device)))
    rows = []
    for variant, bn, init, net in runs:
        result = layer_gradients(net, x, targets, training=training, dropout=dropout, seed=seed)
        for r in result.layers:
            for loss in LOSSES:
                rows.append({
                    "variant": variant, "batch_norm": bn, "init": init, "loss": loss, "layer": r["name"],
                    "depth": r["depth"], "kind": r["kind"], "weight_norm": r["weight"][loss],
                    "activation_norm": r["activation"][loss],
                })
    return pd.DataFrame(rows)


def aux_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    """Per layer, with-aux / without-aux: ``combined`` norm over ``main`` norm.

    Takes :func:`compare_variants`' frame; returns columns variant, batch_norm, init, layer,
    depth, kind, weight_ratio, activation_ratio. Layers the main loss does not reach (the
    aux heads) have no ratio and are left out.
    """
    keys = ["variant", "batch_norm", "init", "layer", "depth", "kind"]
    main = frame[frame["loss"] == "main"].set_index(keys)
    combined = frame[frame["loss"] == "combined"].set_index(keys)
    reached = main["weight_norm"] > 0
    out = pd.DataFrame({
        "weight_ratio": combined["weight_norm"][reached] / main["weight_norm"][reached],
        "activation_ratio": combined["activation_norm"][reached] / main["activation_norm"][reached],
    })
    return out.reset_index()


# ---------------------------------------------------------------------------------------------
# Command line: python -m gnet gradients [IMAGE] [--weights W] [--no-batch-norm] [--init NAME] [--json]


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the ``gradients`` options to ``p``."""
    p.add_argument("image", nargs="?", default=None,
                   help="an image file; default: the first --batch-size Fashion-MNIST test images (or the samples)")
    p.add_argument("--weights", default=None,
                   help="auto (default), bundled, imagenet, random, or a checkpoint file path")
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
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print the tidy long-format table as CSV")


def _fresh_variant(args: argparse.Namespace) -> tuple[GoogLeNet, Callable[[Image.Image], Tensor], dict, list[str]]:
    from .data import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD
    from .preprocess import GrayscalePreprocess

    if args.input_size < MIN_INPUT_SIZE:
        raise GNetError(
            f"--input-size {args.input_size} is too small: GoogLeNet needs at least {MIN_INPUT_SIZE} pixels."
        )
    init = args.init or "trunc_normal"
    net = googlenet(num_classes=len(FASHION_MNIST_CLASSES), batch_norm=args.batch_norm,
                    branch5x5_kernel=PAPER_KERNEL, init=init, seed=args.seed)
    about = {"name": f"fresh GoogLeNet at initialisation ({init}, seed {args.seed})", "weights": "none"}
    transform = GrayscalePreprocess(args.input_size, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    return net, transform, about, list(FASHION_MNIST_CLASSES)


def _loaded_variant(args: argparse.Namespace) -> tuple[GoogLeNet, Callable[[Image.Image], Tensor], dict, list[str]]:
    from .weights import load

    loaded = load(args.weights or "auto", "cpu")
    about = {"name": loaded.card.name, "weights": loaded.source, "untrained_heads": loaded.card.untrained_heads}
    return loaded.net, loaded.transform, about, loaded.classes


def _input_batch(
    args: argparse.Namespace, transform: Callable[[Image.Image], Tensor], classes: list[str]
) -> tuple[Tensor, Tensor | None, str]:
    """(inputs, true labels or None, a description): IMAGE, else Fashion-MNIST test images, else the samples."""
    from .data import FASHION_MNIST_CLASSES, load_fashion_mnist
    from .images import load_image
    from .samples import sample_images

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
    width = max(len(r["name"]) for r in result.layers) + 2
    for quantity, title in (("weight", "weight-gradient norm ||dL/dW||"),
                            ("activation", "activation-gradient norm ||dL/dY|| (layer output, whole batch)")):
        print(f"\n{title}")
        print(f"{'layer':<{width}}" + "".join(f"{loss:>11}" for loss in LOSSES))
        for r in result.layers:
            print(f"{r['name']:<{width}}" + "".join(f"{r[quantity][loss]:>11.2e}" for loss in LOSSES))
    conv1 = result.layers[0]["weight"]
    if conv1["main"] > 0:
        print(f"\nconv1 weight gradient, with aux / without aux (combined / main): "
              f"{conv1['combined'] / conv1['main']:.3g}x")


def _print_comparison(frame: pd.DataFrame) -> None:
    ratios = aux_ratio(frame)
    stem = ratios[ratios["layer"] == "conv1"].set_index(["variant", "init"])["weight_ratio"]
    conv1 = frame[frame["layer"] == "conv1"].pivot_table(
        index=["variant", "init"], columns="loss", values="weight_norm", sort=False
    )
    print("conv1 weight-gradient norm without aux (main) and with aux (main + 0.3 x (aux1 + aux2))")
    print(f"{'variant':<9}{'init':<14}{'main':>11}{'combined':>11}{'with/without':>14}")
    for (variant, init), row in conv1.iterrows():
        print(f"{variant:<9}{init:<14}{row['main']:>11.2e}{row['combined']:>11.2e}{stem[variant, init]:>13.3g}x")
    print("\nmedian with/without-aux ratio of the weight gradient over the layers below aux1 (stem to inception4a)")
    below = ratios[ratios["depth"] <= ratios.loc[ratios["layer"] == "inception4a.pool_proj", "depth"].iloc[0]]
    for (variant, init), r in below.groupby(["variant", "init"], sort=False)["weight_ratio"]:
        print(f"{variant:<9}{init:<14}{r.median():>11.3g}x")


def _check_batch_statistics(x: Tensor, *, batch_norm: bool, training: bool) -> None:
    """Refuse an input on which batch norm in training mode would see one value per channel."""
    if batch_norm and training and not batch_statistics_defined(x.shape[0], min(x.shape[-2:])):
        raise GNetError("Batch norm in training mode needs more than one value per channel: "
                        "use --eval-mode, a larger input, or no IMAGE (a batch of test images).")


def _run_comparison(args: argparse.Namespace) -> None:
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


def run_cli(args: argparse.Namespace) -> int:
    """Run ``gradients`` from parsed arguments; user errors propagate as :class:`GNetError`."""
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
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        result.to_frame().to_csv(sys.stdout, index=False, float_format="%.4g")
    else:
        _print_table(result)
    return 0
