"""Circuits: which channels of the module below build a channel, and which channels of the module above it feeds.

The method of the Distill Circuits thread (Olah et al. 2020, "Zoom In"; Voss et al. 2021,
"Visualizing Weights"), on any GoogLeNet this project loads, offline:

- **Expanded weights.** An Inception branch reads its module's input, which is the previous
  module's output: the four branches of that module concatenated. Between a channel ``i`` of
  that output and the target channel ``c`` sit one or two convolutions. Ignoring the
  nonlinearities, the branch is linear, and its weight from ``i`` to ``c`` is one
  K x K kernel: for the 3x3 and '5x5' branches the product of the 1x1 reduce and the
  convolution, ``E[c, i] = s2[c] * sum_r W2[c, r] * s1[r] * W1[r, i]``, with batch norm's
  scales ``s = gamma / sqrt(var + eps)`` folded in (its shift and the biases only move the
  pre-activation, they connect nothing). The 1x1 branch's kernel is its weight, the pool
  branch's its projection spread over the 3x3 pool window. The *strength* of a connection is
  the kernel summed over its positions: what a uniform unit of channel ``i`` adds to ``c``'s
  pre-activation.
- **Approximations, stated once.** The ReLUs (the one after the reduce included) are taken
  as identity. The pool branch's 3x3 max-pool is replaced by a 3x3 average pool, as the thread
  does ("we replace max pooling by average pooling"), so its kernel is the projection / 9
  at each of the nine positions. The stride-2 max-pools between 3b and 4a and between 4e and
  5a act per channel and are taken as identity: the kernels are in the coordinates of the
  module's input map.
- **Two computations that must agree.** :func:`expanded_weights` multiplies the weights
  (``method="weights"``, the fast one); ``method="gradient"`` runs the branch's own
  convolution and batch-norm modules on the linearized path and differentiates: the gradient
  of the target's centre pre-activation with respect to the input map for
  :func:`upstream` (reverse mode, one backward), the forward-mode derivative along one input
  channel for :func:`downstream` (``torch.func.jvp``). The tests check the two against each
  other and against the weights themselves.
- **Which connections are used.** :func:`gnet.inspect.contributions.contributions` attributes the channel's actual
  spatial-mean activation (after its ReLU, the value the dataset examples rank by) to the
  channels of the module below, on one image or averaged over a set, with captum's
  integrated gradients.
- **Families** (:func:`gnet.inspect.families.families`): the channels of one module grouped by their activation
  profile over a set (k-means on the z-scored spatial means, scikit-learn's), and a table of
  how each family is spread over the four branches, with a hypergeometric test of whether a
  family sits in one branch more than chance predicts ("Branch Specialization", Voss et al.
  2021).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import TargetError
from ..guard import exclusive
from ..net.layers import BRANCHES, INCEPTION_MODULES, ChannelTarget, branch_channels, module_channels, parse_channel
from ..weights.card import LoadedModel

__all__ = [
    "DEFAULT_K",
    "METHODS",
    "Circuit",
    "Connection",
    "below",
    "above",
    "channel_of",
    "downstream",
    "expanded_weights",
    "upstream",
]

Method = Literal["weights", "gradient"]
METHODS: tuple[str, ...] = ("weights", "gradient")
DEFAULT_K = 8

APPROXIMATION = (
    "ReLUs taken as identity; the pool branch's max-pool as a 3x3 average pool; the max-pool between modules "
    "as identity per channel"
)


# ---------------------------------------------------------------- naming the channels on each side


def below(module: str) -> str:
    """The module whose output ``module`` reads; :class:`TargetError` for inception3a, which reads the stem."""
    i = INCEPTION_MODULES.index(module)
    if i == 0:
        raise TargetError(
            f"{module} reads the stem's conv3, whose channels have no MODULE.BRANCH:CHANNEL name: circuits "
            f"start at {INCEPTION_MODULES[1]} (built from {module}'s channels)."
        )
    return INCEPTION_MODULES[i - 1]


def above(module: str) -> str:
    """The module that reads ``module``'s output; :class:`TargetError` for inception5b, which feeds the classifier."""
    i = INCEPTION_MODULES.index(module)
    if i == len(INCEPTION_MODULES) - 1:
        raise TargetError(
            f"{module} feeds only the classifier (global average pooling, then fc): the channels a module feeds "
            f"are shown up to {INCEPTION_MODULES[-2]}."
        )
    return INCEPTION_MODULES[i + 1]


def channel_of(module: str, index: int) -> ChannelTarget:
    """The channel at ``index`` of ``module``'s output (its four branches concatenated)."""
    start = 0
    for branch in BRANCHES:
        width = branch_channels(module, branch)
        if index < start + width:
            return ChannelTarget(module, branch, index - start)
        start += width
    raise IndexError(f"{module} has {start} channels, not {index + 1}")


def module_row(target: ChannelTarget) -> int:
    """The channel's row in its module's output."""
    assert target.channel is not None
    return target.offset + target.channel


def target_channel(target: ChannelTarget | str) -> ChannelTarget:
    target = parse_channel(target) if isinstance(target, str) else target
    if target.channel is None:
        raise TargetError(f"{target.name} is a whole branch: name one of its channels, e.g. {target.name}:0.")
    return target


def check_k(k: int, available: int) -> None:
    if not 1 <= k <= available:
        raise TargetError(f"k={k} is out of range: choose 1 to {available} connections.")


# ---------------------------------------------------------------- the expanded weights


def _kernel_size(inception: nn.Module) -> int:
    """The largest spatial kernel of an Inception module's branches (5 for the paper's, 3 for torchvision's)."""
    return max(inception.branch2[1].conv.kernel_size[0], inception.branch3[1].conv.kernel_size[0], 3)


def _scale(block: nn.Module) -> Tensor:
    """Batch norm's per-channel scale gamma / sqrt(var + eps) of a ConvBlock (ones without batch norm)."""
    bn = block.bn
    if isinstance(bn, nn.BatchNorm2d):
        return bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return torch.ones(block.conv.out_channels, device=block.conv.weight.device)


def _embed(kernel: Tensor, size: int) -> Tensor:
    """A C_out x C_in x k x k kernel centred in size x size (zeros around it)."""
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, [pad] * 4)


def expanded_weights(inception: nn.Module) -> Tensor:
    """C_out x C_in x K x K: the linearized weight from each input channel to each output channel's pre-activation.

    ``inception`` is an :class:`gnet.net.blocks.Inception`; K its largest kernel, each branch's kernel
    centred in it. Computed from the weights (see the module docstring); no forward, no gradient.
    """
    size = _kernel_size(inception)
    with torch.no_grad():
        one = inception.branch1
        rows = [_embed(one.conv.weight * _scale(one)[:, None, None, None], size)]
        for branch in (inception.branch2, inception.branch3):
            reduce, conv = branch[0], branch[1]
            w1 = reduce.conv.weight[:, :, 0, 0] * _scale(reduce)[:, None]  # R x C_in
            w2 = conv.conv.weight * _scale(conv)[:, None, None, None]  # C x R x k x k
            rows.append(_embed(torch.einsum("crhw,ri->cihw", w2, w1), size))
        proj = inception.branch4[1]
        w = proj.conv.weight * _scale(proj)[:, None, None, None]  # C x C_in x 1 x 1
        rows.append(_embed((w / 9).expand(-1, -1, 3, 3), size))
        return torch.cat(rows).float()


def _linear_branch(inception: nn.Module, branch: str, x: Tensor) -> Tensor:
    """The branch's pre-activation on ``x`` with every ReLU skipped and the max-pool replaced by an average pool.

    Runs the model's own Conv2d and BatchNorm2d modules (in eval mode: an affine map), so its
    derivative is an independent computation of :func:`expanded_weights`.
    """
    block = getattr(inception, BRANCHES[branch])
    if branch == "1x1":
        return block.bn(block.conv(x))
    if branch == "pool_proj":
        pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
        return block[1].bn(block[1].conv(pooled))
    reduce, conv = block[0], block[1]
    return conv.bn(conv.conv(reduce.bn(reduce.conv(x))))


def _linear_module(inception: nn.Module, x: Tensor) -> Tensor:
    return torch.cat([_linear_branch(inception, b, x) for b in BRANCHES], 1)


def _gradient_row(inception: nn.Module, target: ChannelTarget, in_channels: int) -> Tensor:
    """C_in x K x K: the gradient of the target's centre pre-activation on the linearized branch (reverse mode)."""
    size = _kernel_size(inception)
    param = next(inception.parameters())
    x = torch.zeros(1, in_channels, size, size, device=param.device, dtype=param.dtype, requires_grad=True)
    with torch.enable_grad():
        out = _linear_branch(inception, target.branch, x)[0, target.channel, size // 2, size // 2]
        (grad,) = torch.autograd.grad(out, x)
    return grad[0].float()


def _gradient_column(inception: nn.Module, channel: int, in_channels: int) -> Tensor:
    """C_out x K x K: every output channel's kernel from one input channel, by forward-mode differentiation.

    The tangent is a unit impulse at the centre of input channel ``channel``; an output's
    derivative at offset (dy, dx) from the centre is its kernel at (-dy, -dx), so the map is flipped back.
    """
    size = _kernel_size(inception)
    span = 2 * size - 1
    param = next(inception.parameters())
    x = torch.zeros(1, in_channels, span, span, device=param.device, dtype=param.dtype)
    tangent = torch.zeros_like(x)
    tangent[0, channel, size - 1, size - 1] = 1.0
    with torch.no_grad():
        _, out = torch.func.jvp(lambda v: _linear_module(inception, v), (x,), (tangent,))
    c = size // 2
    window = out[0, :, size - 1 - c : size + c, size - 1 - c : size + c]
    return window.flip(-1, -2).float()


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Connection:
    """One channel on the other side of a connection, and how strongly it is connected."""

    channel: str  # "inception3b.3x3:12"
    weight: float  # the expanded weight summed over the kernel: its effect per uniform unit of the source
    kernel: np.ndarray  # K x K, the expanded weight itself (source -> target)
    contribution: float | None = None  # data-dependent: the part of the target's activation it accounts for

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "weight": self.weight, "kernel": self.kernel.tolist()}
        if self.contribution is not None:
            out["contribution"] = self.contribution
        return out


@dataclass(frozen=True)
class Circuit:
    """The strongest connections of a channel, one way: excitatory (largest first) and inhibitory (most negative first)."""

    target: str
    direction: Literal["upstream", "downstream"]
    other: str  # the module on the other side
    method: str  # "weights", "gradient" or "integrated_gradients"
    excite: list[Connection]
    inhibit: list[Connection]
    approximation: str = APPROXIMATION
    data: dict[str, Any] = field(default_factory=dict)  # for contributions: the images, the activation, the baseline
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "direction": self.direction,
            "other": self.other,
            "method": self.method,
            "approximation": self.approximation,
            "excite": [c.to_dict() for c in self.excite],
            "inhibit": [c.to_dict() for c in self.inhibit],
            **({"data": self.data} if self.data else {}),
            "seconds": self.seconds,
        }

    @property
    def channels(self) -> list[str]:
        """Every channel shown, excitatory first."""
        return [c.channel for c in self.excite + self.inhibit]


def ranked(
    scores: Tensor, kernels: Tensor, module: str, k: int, contributions: Tensor | None = None
) -> tuple[list[Connection], list[Connection]]:
    """The top-``k`` positive and negative ``scores`` (one per channel of ``module``) as connections."""
    order = torch.argsort(scores, descending=True, stable=True)
    weights = kernels.sum(dim=(1, 2))

    def connection(i: int) -> Connection:
        contribution = None if contributions is None else float(contributions[i])
        return Connection(channel_of(module, i).name, float(weights[i]), kernels[i].cpu().numpy(), contribution)

    excite = [connection(int(i)) for i in order[:k] if scores[i] > 0]
    inhibit = [connection(int(i)) for i in order.flip(0)[:k] if scores[i] < 0]
    return excite, inhibit


def _connections(
    loaded: LoadedModel, target: ChannelTarget | str, k: int, method: Method, direction: str
) -> Circuit:
    """The one body of :func:`upstream` and :func:`downstream`: the target's kernels one way, ranked."""
    t0 = time.perf_counter()
    target = target_channel(target)
    up = direction == "upstream"
    other = below(target.module) if up else above(target.module)
    check_k(k, module_channels(other))
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    inception = getattr(loaded.net, target.module if up else other)
    row = module_row(target)
    with exclusive(loaded.net, training=False):
        if method == "weights":
            weights = expanded_weights(inception)
            kernels = weights[row] if up else weights[:, row]
        elif up:
            kernels = _gradient_row(inception, target, module_channels(other))
        else:
            kernels = _gradient_column(inception, row, module_channels(target.module))
    kernels = kernels.cpu()
    excite, inhibit = ranked(kernels.sum(dim=(1, 2)), kernels, other, k)
    return Circuit(target.name, direction, other, method, excite, inhibit, seconds=time.perf_counter() - t0)


def upstream(
    loaded: LoadedModel, target: ChannelTarget | str, *, k: int = DEFAULT_K, method: Method = "weights"
) -> Circuit:
    """The ``k`` channels of the module below that excite ``target`` most, and the ``k`` that inhibit it most.

    Raises :class:`TargetError` for a target in inception3a (its input is the stem), a channel
    out of range, or ``k`` out of range.
    """
    return _connections(loaded, target, k, method, "upstream")


def downstream(
    loaded: LoadedModel, target: ChannelTarget | str, *, k: int = DEFAULT_K, method: Method = "weights"
) -> Circuit:
    """The ``k`` channels of the module above that ``target`` excites most, and the ``k`` it inhibits most.

    Raises :class:`TargetError` for a target in inception5b (it feeds the classifier), a
    channel out of range, or ``k`` out of range.
    """
    return _connections(loaded, target, k, method, "downstream")
