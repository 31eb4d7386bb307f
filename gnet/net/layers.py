"""GoogLeNet's named points, declared once as data: every other module reads this table.

Like timm's ``feature_info``, the places of the network that other code talks about (their
name, kind, depth, which heads they feed) are written down here, next to the model, and
nothing else parses module names. This file imports no torch, so the CLI's help and the
dashboard's navigation can read it for free.

The naming scheme, one for the whole project:

- **blocks**, the network's top-level parts in forward order (:data:`BLOCKS`): ``conv1``,
  ``maxpool1``, ``lrn1``, ``conv2``, ``conv3``, ``lrn2``, ``maxpool2``, ``inception3a`` ..
  ``inception5b`` with ``maxpool3`` and ``maxpool4`` between them, ``aux1`` right after
  ``inception4a`` and ``aux2`` right after ``inception4d`` (where the forward computes them),
  then ``avgpool``, ``dropout``, ``fc``.
- **branches**: ``<module>.<branch>`` with branch one of ``1x1``, ``3x3``, ``5x5``,
  ``pool_proj`` (``inception4c.5x5``): the branch's output, a slice of the module's output.
- **channels**: ``<module>.<branch>:<channel>`` (``inception4c.5x5:12``), counted within the branch.
- **layers with weights** (:data:`WEIGHT_LAYERS`): ``<point>.<role>``: ``conv1.conv``,
  ``inception3a.1x1.conv``, ``inception3a.3x3.reduce``, ``inception3a.3x3.conv``,
  ``inception3a.pool_proj.proj``, ``aux1.conv``, ``aux1.fc1``, ``aux1.fc2``; the classifier
  is ``fc``. Cost rows add ``.bn`` and ``.relu`` to a convolution's name for the layers after
  it, and ``inception3a.pool_proj.pool`` for the branch's max-pool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import TargetError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "AUX_ATTACH",
    "BLOCKS",
    "BRANCHES",
    "BRANCH_POINTS",
    "HEADS",
    "INCEPTION_MODULES",
    "INCEPTION_SPECS",
    "KINDS",
    "STAGE_ENDS",
    "STEM_POINTS",
    "WEIGHT_LAYERS",
    "Block",
    "ChannelTarget",
    "Point",
    "block_of",
    "branch_channels",
    "heads_reaching",
    "module_channels",
    "modules_read_by",
    "parse_channel",
    "point",
    "present_layers",
    "submodule",
    "submodules",
]

HEADS: tuple[str, ...] = ("main", "aux1", "aux2")
# Public branch names -> torchvision's attribute names (kept for state-dict compatibility).
BRANCHES: dict[str, str] = {"1x1": "branch1", "3x3": "branch2", "5x5": "branch3", "pool_proj": "branch4"}
# name -> (in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), Table 1 of the paper.
INCEPTION_SPECS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}
INCEPTION_MODULES: tuple[str, ...] = tuple(INCEPTION_SPECS)
# Where each auxiliary classifier reads from (the paper: "on top of the output of the (4a) and (4d) modules").
AUX_ATTACH: dict[str, str] = {"aux1": "inception4a", "aux2": "inception4d"}
# The stem's points whose outputs the probe records.
STEM_POINTS: tuple[str, ...] = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2")
KINDS: tuple[str, ...] = ("stem", "inception", "pool", "aux", "classifier")


@dataclass(frozen=True)
class Block:
    """One top-level part of the network, in forward order."""

    name: str
    kind: str  # one of KINDS
    section: str  # "stem", "body" (Inception modules and the pools between them), "aux" or "head"


def _blocks() -> tuple[Block, ...]:
    stem = [Block(n, "stem", "stem") for n in ("conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2")]
    body: list[Block] = []
    attached = {module: aux for aux, module in AUX_ATTACH.items()}
    for module in INCEPTION_MODULES:
        if module == "inception4a":
            body.append(Block("maxpool3", "pool", "body"))
        elif module == "inception5a":
            body.append(Block("maxpool4", "pool", "body"))
        body.append(Block(module, "inception", "body"))
        if module in attached:
            body.append(Block(attached[module], "aux", "aux"))
    head = [Block("avgpool", "pool", "head"), Block("dropout", "classifier", "head"), Block("fc", "classifier", "head")]
    return (*stem, *body, *head)


BLOCKS: tuple[Block, ...] = _blocks()
_BLOCK = {b.name: b for b in BLOCKS}


def _stage_ends() -> tuple[str, ...]:
    """The last point of each resolution stage: the stem's output, then the Inception module
    before each max-pool of the body (inception3b, inception4e) and the last one (inception5b)."""
    body = [b for b in BLOCKS if b.section in ("body", "aux")]
    modules = [b.name for b in body if b.kind == "inception"]
    before_pools = [body[i - 1].name for i, b in enumerate(body) if b.kind == "pool" and i > 0]
    return ([b.name for b in BLOCKS if b.section == "stem"][-1], *before_pools, modules[-1])


# One point per resolution stage, as feature-ensemble methods read a network (Lee et al. 2018 take
# the end of every block of a ResNet): maxpool2, inception3b, inception4e, inception5b.
STAGE_ENDS: tuple[str, ...] = _stage_ends()


def block_of(name: str) -> Block:
    """The block any name of the scheme belongs to, cost rows' ``.bn``/``.relu`` included: its first part."""
    block = _BLOCK.get(name.split(".", 1)[0].split(":", 1)[0])
    if block is None:
        raise KeyError(f"{name!r} names no part of GoogLeNet; blocks are {', '.join(_BLOCK)}")
    return block


def heads_reaching(block: str) -> tuple[str, ...]:
    """The heads whose logits depend on ``block``'s output (an aux head only on itself and what precedes it)."""
    kind = _BLOCK[block].kind
    if kind == "aux":
        return (block,)
    if block in ("dropout", "fc", "avgpool"):
        return ("main",)
    order = [b.name for b in BLOCKS]
    return tuple(h for h in HEADS if h == "main" or order.index(block) <= order.index(AUX_ATTACH[h]))


def modules_read_by(head: str) -> list[str]:
    """The Inception modules whose output reaches ``head``, in depth order (aux1 stops at inception4a)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    return [m for m in INCEPTION_MODULES if head in heads_reaching(m)]


@dataclass(frozen=True)
class Point:
    """A named place in the network: a block, an Inception branch, or a layer with weights."""

    name: str  # in the scheme above: "conv1", "inception4c.5x5", "inception3a.3x3.reduce", "aux1.fc1", "fc"
    kind: str  # the kind of its block: "stem", "inception", "pool", "aux" or "classifier"
    module: str  # its block: "conv1", "inception3a", "aux1", "fc", ...
    branch: str  # "1x1", "3x3", "5x5" or "pool_proj" inside an Inception module, else ""
    role: str  # for a layer with weights: "conv", "reduce", "proj", "fc1", "fc2" or "fc"; else ""
    path: str  # the nn.Module's attribute path in GoogLeNet, e.g. "inception3a.branch2.0.conv"
    depth: int  # position among WEIGHT_LAYERS in forward order; -1 for points without weights
    heads: tuple[str, ...]  # the heads whose logits depend on it

    @property
    def channels(self) -> int:
        """Output channels of an Inception branch (0 for other points)."""
        return branch_channels(self.module, self.branch) if self.branch and not self.role else 0


def _weight_layers() -> tuple[Point, ...]:
    """Every convolution and linear layer, in forward order (aux heads right after their module)."""
    rows: list[tuple[str, str, str, str, str]] = []  # name, module, branch, role, path
    for block in BLOCKS:
        name = block.name
        if block.kind == "stem" and name.startswith("conv"):
            rows.append((f"{name}.conv", name, "", "conv", f"{name}.conv"))
        elif block.kind == "inception":
            b = {public: f"{name}.{attr}" for public, attr in BRANCHES.items()}
            rows += [
                (f"{name}.1x1.conv", name, "1x1", "conv", f"{b['1x1']}.conv"),
                (f"{name}.3x3.reduce", name, "3x3", "reduce", f"{b['3x3']}.0.conv"),
                (f"{name}.3x3.conv", name, "3x3", "conv", f"{b['3x3']}.1.conv"),
                (f"{name}.5x5.reduce", name, "5x5", "reduce", f"{b['5x5']}.0.conv"),
                (f"{name}.5x5.conv", name, "5x5", "conv", f"{b['5x5']}.1.conv"),
                (f"{name}.pool_proj.proj", name, "pool_proj", "proj", f"{b['pool_proj']}.1.conv"),
            ]
        elif block.kind == "aux":
            rows += [
                (f"{name}.conv", name, "", "conv", f"{name}.conv.conv"),
                (f"{name}.fc1", name, "", "fc1", f"{name}.fc1"),
                (f"{name}.fc2", name, "", "fc2", f"{name}.fc2"),
            ]
        elif name == "fc":
            rows.append(("fc", "fc", "", "fc", "fc"))
    return tuple(
        Point(n, _BLOCK[m].kind, m, br, role, path, depth, heads_reaching(m))
        for depth, (n, m, br, role, path) in enumerate(rows)
    )


WEIGHT_LAYERS: tuple[Point, ...] = _weight_layers()
BRANCH_POINTS: tuple[Point, ...] = tuple(
    Point(f"{m}.{b}", "inception", m, b, "", f"{m}.{attr}", -1, heads_reaching(m))
    for m in INCEPTION_MODULES
    for b, attr in BRANCHES.items()
)
_POINTS: dict[str, Point] = {
    **{b.name: Point(b.name, b.kind, b.name, "", "", b.name, -1, heads_reaching(b.name)) for b in BLOCKS},
    **{p.name: p for p in BRANCH_POINTS},
    **{p.name: p for p in WEIGHT_LAYERS},
}


def point(name: str) -> Point:
    """The point called ``name`` (a block, a branch or a layer with weights); KeyError names the scheme."""
    try:
        return _POINTS[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a GoogLeNet point: use a block (conv1, inception4c, aux1, fc), a branch "
            "(inception4c.5x5) or a layer with weights (inception3a.3x3.reduce); see gnet.net.layers"
        ) from None


def branch_channels(module: str, branch: str) -> int:
    """How many channels ``module``'s ``branch`` outputs (Table 1's #1x1, #3x3, #5x5, pool proj)."""
    spec = INCEPTION_SPECS[module]
    return {"1x1": spec[1], "3x3": spec[3], "5x5": spec[5], "pool_proj": spec[6]}[branch]


def module_channels(module: str) -> int:
    """How many channels ``module`` outputs: its four branches concatenated (Table 1's output depth)."""
    return sum(branch_channels(module, b) for b in BRANCHES)


def submodule(net: nn.Module, name: str) -> nn.Module:
    """The module of ``net`` at point ``name`` (for a layer with weights, its Conv2d or Linear)."""
    return net.get_submodule(point(name).path)


def present_layers(net: nn.Module) -> dict[str, nn.Module]:
    """{name: Conv2d or Linear} for the :data:`WEIGHT_LAYERS` ``net`` has, in forward order: all of them in the
    paper's design; a design-lab variant (:class:`gnet.net.model.GoogLeNetConfig`) lacks those it drops, and its
    own stem's convolutions (``conv1.0.conv``, ...) have no name in this table."""
    modules = dict(net.named_modules())
    return {p.name: modules[p.path] for p in WEIGHT_LAYERS if p.path in modules}


def submodules(net: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """{name: :func:`submodule`} for many points, from one walk of ``net`` (half the time of one lookup each)."""
    modules = dict(net.named_modules())
    return {name: modules[point(name).path] for name in names}


@dataclass(frozen=True)
class ChannelTarget:
    """A branch, or one channel of it, as a user names it: ``inception4c.5x5`` or ``inception4c.5x5:12``."""

    module: str
    branch: str
    channel: int | None  # None: the whole branch

    @property
    def name(self) -> str:
        base = f"{self.module}.{self.branch}"
        return base if self.channel is None else f"{base}:{self.channel}"

    @property
    def offset(self) -> int:
        """Where the branch's channels start in its module's output (branches are concatenated in order)."""
        widths = [branch_channels(self.module, b) for b in BRANCHES]
        return sum(widths[: list(BRANCHES).index(self.branch)])


_TARGET = re.compile(r"^(?P<module>[^.:]+)\.(?P<branch>[^.:]+)(?::(?P<channel>-?\d+))?$")


def parse_channel(text: str) -> ChannelTarget:
    """``"inception4c.5x5:12"`` -> ChannelTarget; :class:`TargetError` names the valid choices."""
    m = _TARGET.match(text.strip())
    if m is None:
        raise TargetError(
            f"{text!r} is not a branch or channel: write MODULE.BRANCH or MODULE.BRANCH:CHANNEL, "
            "for example inception4c.5x5:12."
        )
    module, branch = m["module"], m["branch"]
    if module not in INCEPTION_SPECS:
        raise TargetError(f"Unknown module {module!r}: choose one of {', '.join(INCEPTION_MODULES)}.")
    if branch not in BRANCHES:
        raise TargetError(f"Unknown branch {branch!r} of {module}: choose one of {', '.join(BRANCHES)}.")
    channel = None if m["channel"] is None else int(m["channel"])
    width = branch_channels(module, branch)
    if channel is not None and not 0 <= channel < width:
        raise TargetError(f"Channel {channel} is out of range: {module}.{branch} has channels 0 to {width - 1}.")
    return ChannelTarget(module, branch, channel)
