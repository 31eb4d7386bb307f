"""The per-loss gradient norms behind :func:`gnet.inspect.gradients.layer_gradients`.

Three backward passes (one per head), the combined loss summed from them by linearity, and the
norms of every weight and output gradient: fused float32 norms (float64 where they are tiny), and
for the layers where it pays, weight norms from two Gram matrices instead of the gradient itself.
Pinned against plain autograd by tests/gnet/inspect/test_gradients.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..net.losses import AUX_WEIGHT

__all__ = ["gram_pays", "norms_per_loss", "patch_width", "tensor_norms"]


# Below this norm, float32 squares may have lost digits (an entry under ~1e-19 squares to a
# denormal): such tensors are normed again in float64. The float32 norm bounds every entry, so
# above it the entries lost to underflow weigh less than n * 1e-38 / 1e-24 of the squared norm.
# Only the early layers of nets without batch norm get there.
_FLOAT32_SAFE = 1e-12


def tensor_norms(tensors: Sequence[Tensor | None]) -> list[float]:
    """The L2 norm of each tensor, 0 for None (a layer the loss does not reach).

    All of them in one fused float32 pass (``torch._foreach_norm``, what
    ``torch.nn.utils.clip_grad_norm_`` uses), read back in one copy; the few tensors whose
    norm is tiny (without batch norm, early gradients can be ~1e-20 per entry) are redone in
    float64, where their squares do not underflow.
    """
    present = [t.detach() for t in tensors if t is not None]
    if not present:
        return [0.0] * len(tensors)
    with torch.no_grad():
        norms = torch.stack(torch._foreach_norm(present)).tolist()
    exact = iter(float(t.double().norm()) if norm < _FLOAT32_SAFE else norm for t, norm in zip(present, norms))
    return [0.0 if t is None else next(exact) for t in tensors]


# The backward passes run aux1, aux2, then main. A gradient is kept only while a later pass may add to
# it, and main, last, reaches the most layers alone (inception4e to fc): with main first, its gradients
# of those layers stayed alive through both aux passes, and the passes allocated around them.
_PASS_ORDER: tuple[str, ...] = ("aux1", "aux2", "main")


def norms_per_loss(
    losses: Mapping[str, Tensor], tensors: Sequence[Tensor],
    grams: Mapping[int, tuple[int, nn.Module, Tensor]] | None = None,
) -> dict[str, list[float]]:
    """{loss: [norm of d loss / d tensor]} for the three heads, plus the combined loss by linearity.

    The combined gradient is summed only where two heads reach a tensor (the trunk below
    inception4d), in place into the first head's gradient and scaled so that its coefficient is 1
    (no copy): combined = w_first x (g_first + sum of w_h / w_first x g_h). Where one head alone
    reaches a tensor (the top of the net, each aux head's own layers), the combined norm is that
    head's norm times its weight: neither a copy nor a second pass over the largest weights.

    ``grams`` maps the index of a layer's weight in ``tensors`` to (the index of its output, the
    layer, its input): that weight is not differentiated, its norm comes from Gram matrices
    (:func:`gram_pays`).
    """
    grams = grams or {}
    asked = [k for k in range(len(tensors)) if k not in grams]
    targets = [tensors[k] for k in asked]
    with torch.no_grad():
        inputs_gram = {k: _gram(_input_rows(layer, x)) for k, (_, layer, x) in grams.items()}
    norms: dict[str, list[float]] = {}
    first: list[tuple[str, float] | None] = [None] * len(tensors)  # (head, weight) of the first to reach it
    summed: list[Tensor | None] = [None] * len(tensors)  # the sum, where a second head reached it
    kept: list[Tensor | None] = [None] * len(tensors)  # the first head's gradient, while a later one may add
    for i, head in enumerate(_PASS_ORDER):
        last = i == len(_PASS_ORDER) - 1
        grads: list[Tensor | None] = [None] * len(tensors)
        for k, g in zip(asked, torch.autograd.grad(losses[head], targets, retain_graph=not last, allow_unused=True)):
            grads[k] = g
        norms[head] = tensor_norms(grads)
        weight = 1.0 if head == "main" else AUX_WEIGHT
        with torch.no_grad():
            reached = {k: (layer, grads[out]) for k, (out, layer, _) in grams.items()}
            norms[head] = _gram_norms(norms[head], inputs_gram, reached)  # before the sums below add into them
            adds: dict[float, tuple[list[Tensor], list[Tensor]]] = {}  # alpha -> (sums, gradients)
            for j, g in enumerate(grads):
                if g is None:
                    continue
                if first[j] is None:
                    first[j] = (head, weight)
                    kept[j] = None if last else g
                    continue
                if summed[j] is None:
                    summed[j], kept[j] = kept[j], None
                into, added = adds.setdefault(weight / first[j][1], ([], []))
                into.append(summed[j])
                added.append(g)
            for alpha, (into, added) in adds.items():  # fused in place: one call per weight ratio, not per tensor
                torch._foreach_add_(into, added, alpha=alpha)
    kept.clear()
    sums = tensor_norms(summed)
    norms["combined"] = [
        0.0 if f is None else (f[1] * sums[j] if s is not None else f[1] * norms[f[0]][j])
        for j, (f, s) in enumerate(zip(first, summed))
    ]
    for k, (out, _, _) in grams.items():  # the weight's combined norm: its output's rule
        f = first[out]
        if f is not None and summed[out] is None:
            norms["combined"][k] = f[1] * norms[f[0]][k]
    with torch.no_grad():
        shared = {k: (layer, summed[out]) for k, (out, layer, _) in grams.items() if summed[out] is not None}
        found = _gram_norms(norms["combined"], inputs_gram, shared)
    for k in shared:
        norms["combined"][k] = first[grams[k][0]][1] * found[k]
    return norms


# A layer's weight gradient is G^T X, G its output gradient and X its input, both as rows: a linear layer's
# rows x features; a convolution's one row per output position (X: the input patches it read, as unfold
# lays them out). Its norm needs neither that out x in matrix nor the work that writes it:
# ||G^T X||^2 = <G G^T, X X^T>, two rows x rows Gram matrices (Goodfellow 2015, arXiv:1510.01799, the
# per-example "ghost" norm used batch-wide); X X^T is computed once per call for all the losses. It pays
# while rows x (in + out) stays well under in x out: each aux head's 2048 x 1024 fc1 at a small batch,
# where forming the 8 MB gradient and reading it back cost ~1.5 ms per pass, and the convolutions of
# inception5a/5b at 64 px (2 x 2 positions per image): 2 to 4% of a call at batch 8 (bench/bench_speed.py's
# "Gram norms" row). A margin of 2, which also routes inception4e's 3x3 and five smaller 5a/5b layers,
# measured the same (1.00x against 4); 4 keeps inception4 (4 x 4 positions) on autograd, as the cost
# model expects rows x rows Gram matrices of 128 rows to stop paying there.
_GRAM_MARGIN = 4


def patch_width(layer: nn.Module) -> int | None:
    """The length of one row of X for ``layer`` (in features, or in channels x kernel area); None where the
    Gram route does not apply (a grouped convolution, one padded otherwise than with explicit zeros, any
    layer but a linear one and a 2-D convolution)."""
    if isinstance(layer, nn.Linear):
        return layer.in_features
    plain = type(layer) is nn.Conv2d and layer.groups == 1 and layer.padding_mode == "zeros"
    if plain and isinstance(layer.padding, tuple):
        return layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
    return None


def gram_pays(layer: nn.Module, y: Tensor) -> bool:
    """Whether ``layer``'s weight-gradient norm is cheaper from Gram matrices, given its output ``y``."""
    width = patch_width(layer)
    if width is None:
        return False
    outs = layer.weight.shape[0]
    rows = y.numel() // outs
    return rows * (width + outs) * _GRAM_MARGIN < width * outs


def _as_rows(layer: nn.Module, t: Tensor) -> Tensor:
    """A tensor ``layer`` read or wrote as rows x features: a linear layer's features are its last
    dimension, a convolution's channels its second (N x C x ..., one row per image and position)."""
    if isinstance(layer, nn.Linear):
        return t.reshape(-1, t.shape[-1])
    return t.reshape(t.shape[0], t.shape[1], -1).movedim(1, -1).reshape(-1, t.shape[1])


def _input_rows(layer: nn.Module, x: Tensor) -> Tensor:
    """X as rows x :func:`patch_width`: a convolution's input patches, one row per output position."""
    if isinstance(layer, nn.Conv2d) and (layer.kernel_size, layer.stride, layer.padding) != ((1, 1), (1, 1), (0, 0)):
        x = torch.nn.functional.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    return _as_rows(layer, x)


def _gram(rows: Tensor) -> Tensor:
    """X X^T in float64 for X given as rows."""
    x64 = rows.double()
    return x64 @ x64.T


def _gram_norms(norms: list[float], inputs_gram: Mapping[int, Tensor],
                grad_outputs: Mapping[int, tuple[nn.Module, Tensor | None]]) -> list[float]:
    """``norms`` with entry k set to ||G^T X||_F from X X^T (``inputs_gram[k]``) and ``grad_outputs[k]``,
    (the layer, G; None: a loss that does not reach it, norm 0): read back in one copy (one host
    synchronisation per call, not one per layer)."""
    norms = list(norms)
    reached = {k: (layer, g) for k, (layer, g) in grad_outputs.items() if g is not None}
    for k in grad_outputs:
        norms[k] = 0.0
    if reached:
        squared = torch.stack([(_gram(_as_rows(layer, g)) * inputs_gram[k]).sum()
                               for k, (layer, g) in reached.items()])
        for k, value in zip(reached, squared.clamp_min(0.0).sqrt().tolist()):
            norms[k] = value
    return norms
