"""Per-layer gradient magnitudes for each of GoogLeNet's losses, from one forward pass.

GoogLeNet (Szegedy et al. 2014, arXiv:1409.4842, section 5) attaches two auxiliary
classifiers to intermediate layers and trains on main + 0.3 x (aux1 + aux2), to push
gradient back into the early layers of a deep net that had no batch normalization.
:func:`layer_gradients` measures, for every convolution and linear layer, the L2 norm of
the gradient of each loss choice with respect to the layer's weight and to its output
(the "activation gradient"); :func:`compare_variants` runs that measurement on the
loaded model and on fresh nets with and without batch norm, under each initialisation.

Conventions, pinned by tests/gnet/inspect/test_gradients.py:

- weight norm: ``||dL/dW||_2`` over the layer's weight tensor (the bias is left out, as in
  the training log, :mod:`gnet.train.gradlog`); activation norm: ``||dL/dY||_2`` over the whole
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
  training-mode forward would update, are left alone: the model is unchanged.
  Eval mode suits trained nets only: at initialisation the running statistics are still
  (mean 0, variance 1), so in eval mode batch norm is nearly the identity and a fresh net
  with batch norm shows the same vanishing gradients as one without.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..guard import exclusive, seeded
from ..net.layers import HEADS, WEIGHT_LAYERS, submodules
from ..net.losses import LOSSES, head_losses
from ..net.model import INIT_SCHEMES, GoogLeNet, googlenet
from .grad_norms import gram_pays, norms_per_loss, patch_width
from .probe import capture

__all__ = [
    "COLUMNS",
    "LOSSES",
    "PAPER_KERNEL",
    "QUANTITIES",
    "GradientResult",
    "aux_ratio",
    "compare_variants",
    "layer_gradients",
]

QUANTITIES: tuple[str, ...] = ("weight", "activation")
PAPER_KERNEL = 5  # the fresh variants use the paper's 5x5 kernel, not torchvision's 3 (pytorch/vision#906)
# The one shape of every gradient result: one row per (layer, loss, quantity). compare_variants
# puts the variant's columns (variant, batch_norm, init) in front.
COLUMNS: dict[str, str] = {
    "layer": "str",  # a name of gnet.net.layers.WEIGHT_LAYERS
    "depth": "int64",  # its position in forward order
    "kind": "str",  # stem, inception, aux or classifier
    "module": "str",  # its block: conv1, inception3a, aux1, fc, ...
    "loss": "str",  # one of LOSSES
    "quantity": "str",  # weight (||dL/dW||) or activation (||dL/dY||)
    "norm": "float64",
}
VARIANT_COLUMNS: dict[str, str] = {"variant": "str", "batch_norm": "bool", "init": "str"}


@dataclass(frozen=True)
class GradientResult:
    """Gradient norms of every conv/linear layer for each loss, from one forward pass.

    ``norms`` is the tidy table of :data:`COLUMNS`, layers in forward order; the aux heads'
    layers sit right after the module they branch from (inception4a, inception4d), and
    ``kind`` ("stem", "inception", "aux", "classifier") lets a plot of the main path leave them out.
    """

    variant: dict[str, Any]
    losses: dict[str, float]
    norms: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (a copy), one row per (layer, loss, quantity)."""
        return self.norms.copy()

    def table(self, quantity: str) -> pd.DataFrame:
        """One row per layer, one column per loss: the norms of ``quantity`` (weight or activation)."""
        rows = self.norms[self.norms["quantity"] == quantity]
        wide = rows.pivot(index=["depth", "layer", "kind"], columns="loss", values="norm")
        return wide[list(LOSSES)].reset_index().rename_axis(columns=None)

    def to_dict(self) -> dict[str, Any]:
        """``{"variant", "losses", "layers": [weight norms], "activation": [activation norms]}``;
        each list holds ``{"name", "depth", "kind", "main", "aux1", "aux2", "combined"}``."""

        def rows(quantity: str) -> list[dict[str, Any]]:
            table = self.table(quantity).rename(columns={"layer": "name"})
            return [
                {"name": r["name"], "depth": int(r["depth"]), "kind": r["kind"], **{k: float(r[k]) for k in LOSSES}}
                for r in table.to_dict(orient="records")
            ]

        return {"variant": self.variant, "losses": self.losses, "layers": rows("weight"),
                "activation": rows("activation")}


@contextmanager
def _running_stats_kept(net: nn.Module) -> Iterator[None]:
    """Inside the block, training-mode forwards leave every buffer (batch norm's running statistics) as it was.

    Batch norm stops tracking (``track_running_stats = False``) for the block: in training mode it
    then normalizes with the batch's statistics, as before, and updates nothing. That is exact and
    cheaper than copying GoogLeNet's 171 buffers in and back out (about 1% of a call at batch 8,
    64 px: bench/bench_speed.py's "running statistics" row). Any other buffer is copied and
    restored; the flags come back on exit, even when the block raises.
    """
    tracking: list[nn.Module] = []
    others: list[Tensor] = []
    for m in net.modules():  # one walk
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            tracking.append(m)
        elif m._buffers:  # its own buffers, as named_buffers reads them: 3x faster than buffers(recurse=False)
            others.extend(b for b in m._buffers.values() if b is not None)
    with torch.no_grad():
        saved = torch._foreach_mul(others, 1) if others else []  # a copy of each (there is no _foreach_clone)
    try:
        for m in tracking:
            m.track_running_stats = False
        yield
    finally:
        for m in tracking:
            m.track_running_stats = True
        if others:
            with torch.no_grad():
                torch._foreach_copy_(others, saved)


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed the RNG dropout draws from (see :func:`gnet.guard.seeded`); ``None`` leaves it alone."""
    if seed is None:
        yield
        return
    with seeded(seed, device):
        yield


def _tidy_rows(norms: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The tidy table built row by row: the definition :func:`_tidy` reproduces (and the tests hold it to)."""
    n = len(WEIGHT_LAYERS)
    rows = [
        (p.name, p.depth, p.kind, p.module, loss, quantity, norms[loss][offset + p.depth])
        for p in WEIGHT_LAYERS
        for offset, quantity in zip((0, n), QUANTITIES)
        for loss in LOSSES
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)


@functools.cache
def _tidy_template() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The table's constant columns (built once), and where each row's norm sits in the per-loss lists."""
    n = len(WEIGHT_LAYERS)
    template = _tidy_rows({loss: [0.0] * (2 * n) for loss in LOSSES})
    loss_rows = np.array([i for _ in WEIGHT_LAYERS for _ in QUANTITIES for i in range(len(LOSSES))])
    offsets = np.array([offset + p.depth for p in WEIGHT_LAYERS for offset in (0, n) for _ in LOSSES])
    return template, loss_rows, offsets


def _tidy(norms: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """The tidy table from norms listed per loss as [weights of every layer..., outputs of every layer...].

    Only the norm column changes from call to call: it is gathered into a copy of the constant
    columns (pandas copies on write, so the template is never touched). Building the 512 rows
    anew took 1.4 ms, ~2% of a layer_gradients call at batch 8 and 64 px; this takes 0.04 ms.
    """
    template, loss_rows, offsets = _tidy_template()
    table = np.array([norms[loss] for loss in LOSSES], dtype=np.float64)
    return template.assign(norm=table[loss_rows, offsets])


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
    points = submodules(net, (p.name for p in WEIGHT_LAYERS))
    device = next(net.parameters()).device
    x = x.to(device)
    with (
        exclusive(net, training=training),
        _running_stats_kept(net),
        torch.enable_grad(),
        _seeded(seed, device),
    ):
        if not dropout:
            for m in net.modules():
                if isinstance(m, nn.Dropout):
                    m.eval()  # exclusive() restores every submodule's mode on exit
        routable = {name: m for name, m in points.items() if patch_width(m) is not None}
        inputs: dict[str, Tensor] = {}  # what each layer read: the Gram route picks its layers from their shapes
        with capture(net, points, detach=False, inputs=inputs) as outputs:
            out = net(x)
        missing = [name for name in points if name not in outputs]
        if missing:
            raise RuntimeError(f"layer {missing[0]!r} did not run in the forward pass")
        y = out.main.detach().argmax(1) if targets is None else targets.to(device)
        losses = head_losses(out, y)
        names = list(points)
        tensors = [m.weight for m in points.values()] + [outputs[name] for name in names]
        grams = {i: (len(names) + i, routable[name], inputs[name]) for i, name in enumerate(names)
                 if name in routable and gram_pays(routable[name], outputs[name])}
        norms = norms_per_loss(losses, tensors, grams)
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
    return GradientResult(variant=variant, losses=loss_values, norms=_tidy(norms))


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
    loaded net's, else 10 (Fashion-MNIST). Returns the tidy table of :data:`COLUMNS` with
    :data:`VARIANT_COLUMNS` in front: variant ("loaded", "no_bn", "bn"), batch_norm, init
    ("loaded" for the loaded net). Cost: one forward and three backwards per net; on a CPU
    keep ``x`` small (8 images at 64 px: about a second per net).
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
    frames = [
        layer_gradients(net, x, targets, training=training, dropout=dropout, seed=seed).norms.assign(
            variant=variant, batch_norm=bn, init=init
        )
        for variant, bn, init, net in runs
    ]
    columns = [*VARIANT_COLUMNS, *COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns).astype({**VARIANT_COLUMNS, **COLUMNS})
    return pd.concat(frames, ignore_index=True)[columns]


def aux_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    """Per layer and quantity, with-aux / without-aux: the ``combined`` norm over the ``main`` norm.

    Takes :func:`compare_variants`' table; returns columns variant, batch_norm, init, layer,
    depth, kind, module, quantity, ratio. Layers the main loss does not reach (the aux heads)
    have no ratio and are left out.
    """
    keys = [*VARIANT_COLUMNS, "layer", "depth", "kind", "module", "quantity"]
    main = frame[frame["loss"] == "main"].set_index(keys)["norm"]
    combined = frame[frame["loss"] == "combined"].set_index(keys)["norm"]
    reached = main > 0
    return (combined[reached] / main[reached]).rename("ratio").reset_index()
