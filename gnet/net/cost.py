"""Analytic per-layer cost of a :class:`~gnet.net.model.GoogLeNet` (the paper's Table 1 beside it: :mod:`gnet.net.table1`).

Shapes are derived from each layer's hyper-parameters while walking GoogLeNet's known
topology; nothing is run and no hook is registered. Every layer becomes a :class:`CostRow`,
so what is not a multiply-add is listed rather than dropped.

Counting convention (pinned by ``tests/gnet/net/test_cost.py``):

* ``macs``: multiply-accumulates of Conv2d and Linear layers. This is what fvcore and
  ptflops report, and what torchvision's "1.50 GFLOPS" for GoogLeNet means.
* ``flops = 2 * macs`` for those layers, the convention of ``torch.utils.flop_counter``;
  the total equals ``FlopCounterMode``'s on the same model and input. Bias adds are not
  counted, as in ``FlopCounterMode``.
* ``other_ops``: a per-element estimate for every other layer, whose ``macs`` and
  ``flops`` are 0: ReLU 1 per output element; BatchNorm 2 per element (scale and shift
  at inference); LocalResponseNorm ``size + 3`` per element (squares and sum over the
  window, then scale, power and divide); MaxPool2d and AvgPool2d ``k_h * k_w`` per
  output element; AdaptiveAvgPool2d the exact size of each pooling window; Dropout 0
  (identity at inference); the input transform (``transform_input=True``) 2 per element.

Row names follow :mod:`gnet.net.layers`: a convolution or linear layer has its name there
(``conv1.conv``, ``inception3a.3x3.reduce``, ``inception3a.pool_proj.proj``, ``aux1.fc1``,
``fc``); the batch norm and ReLU after a convolution add ``.bn`` / ``.relu`` to it
(``inception3a.3x3.reduce.relu``), except in the stem, where they follow the block
(``conv1.bn``); other layers are named by their block (``maxpool1``, ``avgpool``), the
branch's pool ``inception3a.pool_proj.pool``, and an aux head's ``aux1.pool``, ``aux1.relu``,
``aux1.dropout``.

Rows follow :data:`gnet.net.layers.BLOCKS`, the forward order: the auxiliary heads' rows come
right after the module they read (``aux1`` after ``inception4a``, ``aux2`` after
``inception4d``), because the forward computes them there, in eval mode too. ``Identity``
layers (the batch norm or LRN a variant lacks) produce no row; any other module type
without a handler raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import pandas as pd
from torch import nn

from .blocks import ConvBlock, Inception, InceptionAux
from .layers import BLOCKS, WEIGHT_LAYERS, Block
from .model import GoogLeNet, conv_output_size, pool_output_size

__all__ = [
    "KINDS",
    "CostRow",
    "UnsupportedModuleError",
    "flops",
    "layer_cost",
    "to_frame",
    "totals",
]

KINDS: tuple[str, ...] = ("conv", "linear", "pool", "norm", "act", "dropout")

Shape = tuple[int, ...]  # (C, H, W) for feature maps, (F,) after flatten


class UnsupportedModuleError(TypeError):
    """The network holds a layer type the cost model has no handler for."""


@dataclass(frozen=True)
class CostRow:
    """Cost of one layer for a batch of one image."""

    name: str  # e.g. "conv1.conv", "inception3a.3x3.reduce", "aux1.fc1", "fc"
    kind: str  # one of KINDS
    module: str  # "stem", "inception3a".."inception5b", "pool", "aux1", "aux2" or "head"
    branch: str  # "1x1", "3x3", "5x5", "pool_proj" inside an Inception module, else ""
    out_shape: Shape
    params: int  # every parameter of the layer: weight, bias, batch-norm affine
    macs: int
    flops: int
    other_ops: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Cost:
    """What a handler returns: the layer's output shape and its cost."""

    kind: str
    out_shape: Shape
    macs: int = 0
    other_ops: int = 0


def layer_cost(layer: nn.Module, in_shape: Shape, *, name: str = "", module: str = "", branch: str = "") -> CostRow:
    """Cost of one layer of a supported type on one input of shape ``in_shape`` (no batch axis).

    Raises :class:`UnsupportedModuleError` for a type without a handler (``Identity``
    included: it costs nothing, and :func:`flops` skips it) and ``ValueError`` when the
    input is too small for the layer to produce an output.
    """
    handler = _HANDLERS.get(type(layer))
    if handler is None:
        raise UnsupportedModuleError(
            f"layer {name!r} is a {type(layer).__name__}, which gnet.net.cost has no handler for; "
            f"supported: {', '.join(t.__name__ for t in _HANDLERS)}"
        )
    cost = handler(layer, in_shape)
    if any(d <= 0 for d in cost.out_shape):
        raise ValueError(f"layer {name!r} would output shape {cost.out_shape}; use a larger input")
    return CostRow(
        name=name,
        kind=cost.kind,
        module=module,
        branch=branch,
        out_shape=cost.out_shape,
        params=sum(p.numel() for p in layer.parameters()),
        macs=cost.macs,
        flops=2 * cost.macs,
        other_ops=cost.other_ops,
    )


@dataclass
class _Walk:
    """Where the walk through the network is: the rows so far and the labels new rows get."""

    rows: list[CostRow] = field(default_factory=list)
    module: str = "stem"
    branch: str = ""

    def add(self, layer: nn.Module, name: str, in_shape: Shape) -> Shape:
        """Append ``layer``'s row (none for Identity) and return its output shape."""
        if isinstance(layer, nn.Identity):
            return in_shape
        row = layer_cost(layer, in_shape, name=name, module=self.module, branch=self.branch)
        self.rows.append(row)
        return row.out_shape


# ---------------------------------------------------------------- per-op handlers


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _conv2d(m: nn.Conv2d, s: Shape) -> _Cost:
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
    if m.padding == "same":
        out_hw = s[1:]
    else:
        ph, pw = (0, 0) if m.padding == "valid" else m.padding
        out_hw = (conv_output_size(s[1], kh, sh, ph, dh), conv_output_size(s[2], kw, sw, pw, dw))
    out = (m.out_channels, *out_hw)
    return _Cost("conv", out, macs=_numel(out) * (m.in_channels // m.groups) * kh * kw)


def _linear(m: nn.Linear, s: Shape) -> _Cost:
    return _Cost("linear", (m.out_features,), macs=m.in_features * m.out_features)


def _window_pool(m: nn.MaxPool2d | nn.AvgPool2d, s: Shape) -> _Cost:
    (kh, kw), (sh, sw), (ph, pw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    dh, dw = _pair(getattr(m, "dilation", 1))  # AvgPool2d has no dilation
    out = (s[0], pool_output_size(s[1], kh, sh, ph, dh, m.ceil_mode), pool_output_size(s[2], kw, sw, pw, dw, m.ceil_mode))
    return _Cost("pool", out, other_ops=_numel(out) * kh * kw)


def _adaptive_windows(size: int, out: int) -> int:
    """Total length of the windows PyTorch's adaptive pooling uses along one axis."""
    return sum(-(-(i + 1) * size // out) - (i * size) // out for i in range(out))  # ceil(end) - floor(start)


def _adaptive_avg_pool(m: nn.AdaptiveAvgPool2d, s: Shape) -> _Cost:
    oh, ow = _pair(m.output_size)
    oh, ow = oh or s[1], ow or s[2]  # None keeps the input's size
    ops = s[0] * _adaptive_windows(s[1], oh) * _adaptive_windows(s[2], ow)
    return _Cost("pool", (s[0], oh, ow), other_ops=ops)


def _batch_norm(m: nn.BatchNorm2d, s: Shape) -> _Cost:
    return _Cost("norm", s, other_ops=2 * _numel(s))


def _lrn(m: nn.LocalResponseNorm, s: Shape) -> _Cost:
    return _Cost("norm", s, other_ops=(m.size + 3) * _numel(s))


def _relu(m: nn.ReLU, s: Shape) -> _Cost:
    return _Cost("act", s, other_ops=_numel(s))


def _dropout(m: nn.Dropout, s: Shape) -> _Cost:
    return _Cost("dropout", s)


_HANDLERS: dict[type[nn.Module], Callable[[nn.Module, Shape], _Cost]] = {
    nn.Conv2d: _conv2d,
    nn.Linear: _linear,
    nn.MaxPool2d: _window_pool,
    nn.AvgPool2d: _window_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.BatchNorm2d: _batch_norm,
    nn.LocalResponseNorm: _lrn,
    nn.ReLU: _relu,
    nn.Dropout: _dropout,
}


# ---------------------------------------------------------------- GoogLeNet's topology


def _conv_block(walk: _Walk, block: ConvBlock, prefix: str, conv_name: str, s: Shape) -> Shape:
    """Rows ``conv_name``, ``prefix.bn`` (with batch norm) and ``prefix.relu``."""
    s = walk.add(block.conv, conv_name, s)
    s = walk.add(block.bn, f"{prefix}.bn", s)
    return walk.add(block.relu, f"{prefix}.relu", s)


def _inception(walk: _Walk, name: str, module: Inception, s: Shape) -> Shape:
    """Each branch reads the module's input; their outputs are concatenated along channels."""
    channels = 0
    for branch, layer in module.branches.items():
        walk.branch = branch
        names = [p.name for p in WEIGHT_LAYERS if p.module == name and p.branch == branch]
        if branch == "pool_proj":
            names.insert(0, f"{name}.{branch}.pool")
        out = s
        for part, part_name in zip(layer if isinstance(layer, nn.Sequential) else [layer], names, strict=True):
            if isinstance(part, ConvBlock):
                out = _conv_block(walk, part, part_name, part_name, out)
            else:  # the pool branch's max-pool, or the Identity of a layer a design-lab variant drops
                out = walk.add(part, part_name, out)
        channels += out[0]
    walk.branch = ""
    return (channels, *out[1:])


def _aux(walk: _Walk, name: str, head: InceptionAux, s: Shape) -> None:
    conv, fc1, fc2 = (p.name for p in WEIGHT_LAYERS if p.module == name)
    s = walk.add(head.pool, f"{name}.pool", s)
    s = _conv_block(walk, head.conv, conv, conv, s)
    s = (_numel(s),)  # flatten
    s = walk.add(head.fc1, fc1, s)
    s = walk.add(head.relu, f"{name}.relu", s)
    s = walk.add(head.dropout, f"{name}.dropout", s)
    walk.add(head.fc2, fc2, s)


def _cost_module(block: Block) -> str:
    """The ``module`` column of a block's rows: stem, an Inception module, pool (between modules), aux1/2 or head."""
    if block.kind in ("inception", "aux"):
        return block.name
    return {"stem": "stem", "body": "pool", "head": "head"}[block.section]


def flops(net: GoogLeNet, input_size: int = 224) -> list[CostRow]:
    """Per-layer cost of ``net`` on one ``input_size`` x ``input_size`` RGB image, in forward order.

    Raises :class:`UnsupportedModuleError` for a layer type without a handler and
    ``ValueError`` when the input is too small for some layer to produce an output.
    """
    walk = _Walk()
    s: Shape = (3, input_size, input_size)
    if net.config.transform_input:
        walk.rows.append(CostRow("transform_input", "norm", "stem", "", s, 0, 0, 0, 2 * _numel(s)))
    for block in BLOCKS:
        walk.module = _cost_module(block)
        layer = getattr(net, block.name)
        if block.kind == "inception":
            s = _inception(walk, block.name, layer, s)
        elif block.kind == "aux":
            _aux(walk, block.name, layer, s)  # a side branch: the main path's shape goes on unchanged
        elif isinstance(layer, ConvBlock):
            s = _conv_block(walk, layer, block.name, f"{block.name}.conv", s)
        elif isinstance(layer, nn.Sequential):  # a design-lab stem: conv1.0, conv1.1, ... (gnet.net.model)
            for i, part in enumerate(layer):
                if isinstance(part, ConvBlock):
                    s = _conv_block(walk, part, f"{block.name}.{i}", f"{block.name}.{i}.conv", s)
                else:
                    s = walk.add(part, f"{block.name}.{i}", s)
        else:
            if block.name == "dropout":
                s = (_numel(s),)  # flatten after global average pooling
            s = walk.add(layer, block.name, s)
    return walk.rows


def totals(rows: list[CostRow]) -> dict[str, int]:
    """Sums of params, macs, flops and other_ops over ``rows``."""
    return {key: sum(getattr(r, key) for r in rows) for key in ("params", "macs", "flops", "other_ops")}


def to_frame(rows: list[CostRow]) -> pd.DataFrame:
    """The rows as a DataFrame, one column per :class:`CostRow` field."""
    return pd.DataFrame([r.to_dict() for r in rows], columns=[f.name for f in fields(CostRow)])
