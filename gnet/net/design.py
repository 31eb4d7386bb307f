"""The design lab: GoogLeNet's design choices flipped one at a time, each measured on the built net.

The paper's choices (Szegedy et al. 2014, arXiv:1409.4842), and what flipping each one tests:

- the **stem** shrinks 224 px to 56 before the expensive layers (``stem="3x3"``, ``stem="vgg"``);
- the **1x1 reductions** before the 3x3 and 5x5 convolutions (``reductions=False``) and the pool
  branch's projection (``pool_proj=False``; both off: Figure 2a, the naive module);
- **global average pooling** and one linear layer instead of AlexNet's and VGG's dense layer on the
  flattened map (``classifier="fc"``);
- the **auxiliary heads**, trained with and dropped at test time (``aux=False``).

Every number comes from the built network: parameters from its tensors, multiply-adds from
:mod:`gnet.net.cost` (equal to ``torch.utils.flop_counter`` on every variant, pinned by tests),
activation memory from the tensors autograd saves for backward in one training step
(:func:`activation_bytes`), latency from timing forward and forward+backward passes interleaved
with the paper's design (:func:`measure_latency`). Batch norm, the fifth choice the course notes
discuss, is the Gradients page's (:mod:`gnet.inspect.gradients`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..device import available_memory, memory_format, resolve_device, synchronize
from ..errors import DesignError
from .cost import CostRow, flops, layer_cost, totals
from .layers import HEADS
from .losses import AUX_WEIGHT
from .model import (
    CLASSIFIERS,
    MAX_INPUT_SIZE,
    MIN_INPUT_SIZE,
    SINGLE_IMAGE_MIN_SIZE,
    STEMS,
    GoogLeNet,
    GoogLeNetConfig,
    batch_statistics_defined,
)

__all__ = [
    "CHOICES",
    "PAPER",
    "STAGES",
    "Claim",
    "Design",
    "DesignComparison",
    "DesignCost",
    "Latency",
    "activation_bytes",
    "check_design",
    "claims",
    "compare_designs",
    "cost_of",
    "estimate_training_bytes",
    "measure_latency",
    "smallest_input_size",
    "stage_of",
    "stem_terms",
]

# Depth stages of the cost bars, in forward order: where the multiply-adds sit.
STAGES: tuple[str, ...] = ("stem", "inception 3", "inception 4", "inception 5", "aux heads", "classifier")


@dataclass(frozen=True)
class Design:
    """One set of the design lab's choices; the defaults are the paper's."""

    stem: str = "paper"  # "paper" (7x7/2), "3x3" (three 3x3 convs, 32-32-64) or "vgg" (two 3x3/1 at full size)
    reductions: bool = True  # the 1x1 reduce before the 3x3 and 5x5 convolutions
    pool_proj: bool = True  # the 1x1 projection after the pool branch's max-pool
    classifier: str = "gap"  # "gap" (global average pooling + linear) or "fc" (flatten + linear)
    aux: bool = True  # the auxiliary heads trained with the net (always dropped at test time)

    @property
    def name(self) -> str:
        """How the lab names the design: ``paper``, or its changes (``no 1x1 reductions, fc classifier``)."""
        changes = [f"{self.stem} stem"] if self.stem != "paper" else []
        if not self.reductions and not self.pool_proj:
            changes.append("naive module (Figure 2a)")
        else:
            changes += [] if self.reductions else ["no 1x1 reductions"]
            changes += [] if self.pool_proj else ["no pool projection"]
        changes += ["fc classifier"] if self.classifier == "fc" else []
        changes += [] if self.aux else ["no aux heads"]
        return ", ".join(changes) or "paper"

    def config(self, *, num_classes: int, input_size: int) -> GoogLeNetConfig:
        """The model config of this design (batch norm, as torchvision and the bundled net have it)."""
        return GoogLeNetConfig(
            num_classes=num_classes, stem=self.stem, reductions=self.reductions, pool_proj=self.pool_proj,
            classifier=self.classifier, fc_input_size=input_size if self.classifier == "fc" else None,
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "name": self.name}


PAPER = Design()
# Every one-choice change from the paper's design, and the paper's own Figure 2a (two choices at once).
CHOICES: tuple[Design, ...] = (
    Design(stem="3x3"),
    Design(stem="vgg"),
    Design(reductions=False),
    Design(pool_proj=False),
    Design(reductions=False, pool_proj=False),
    Design(classifier="fc"),
    Design(aux=False),
)


def stage_of(row: CostRow) -> str:
    """The :data:`STAGES` entry a cost row belongs to (the pools between modules count with the next stage)."""
    if row.module == "stem":
        return "stem"
    if row.module.startswith("inception"):
        return f"inception {row.module[len('inception')]}"
    if row.module in ("aux1", "aux2"):
        return "aux heads"
    if row.module == "pool":
        return "inception 4" if row.name == "maxpool3" else "inception 5"
    return "classifier"


def smallest_input_size(design: Design, num_classes: int = 1000) -> int:
    """The smallest input side this design runs on, found by walking the cost model's shapes (at least
    :data:`gnet.net.model.MIN_INPUT_SIZE`, the project's floor: 32 px leaves inception5b a 1x1 map)."""
    for size in range(1, MAX_INPUT_SIZE + 1):
        try:
            with torch.device("meta"):
                net = GoogLeNet(design.config(num_classes=num_classes, input_size=max(size, MIN_INPUT_SIZE)))
            flops(net, size)
        except ValueError:
            continue
        return max(size, MIN_INPUT_SIZE)
    raise DesignError(f"The {design.name} design runs on no input up to {MAX_INPUT_SIZE} px.")


def check_design(design: Design, *, input_size: int, num_classes: int) -> None:
    """Raise :class:`DesignError` with one sentence for the first choice or size this lab cannot build."""
    if design.stem not in STEMS:
        raise DesignError(f"Unknown stem {design.stem!r}: use one of {', '.join(STEMS)}.")
    if design.classifier not in CLASSIFIERS:
        raise DesignError(f"Unknown classifier {design.classifier!r}: use one of {', '.join(CLASSIFIERS)}.")
    if not 2 <= num_classes <= 100_000:
        raise DesignError(f"--num-classes {num_classes} is out of range: use 2 to 100,000 classes.")
    if input_size > MAX_INPUT_SIZE:
        raise DesignError(f"--input-size {input_size} is too large: the lab builds nets up to {MAX_INPUT_SIZE} px.")
    smallest = smallest_input_size(design, num_classes)
    if input_size < smallest:
        raise DesignError(
            f"--input-size {input_size} is too small for the {design.name} design: it needs at least {smallest} pixels."
        )


def _meta_net(design: Design, input_size: int, num_classes: int) -> GoogLeNet:
    with torch.device("meta"):  # shapes and parameter counts, nothing allocated
        return GoogLeNet(design.config(num_classes=num_classes, input_size=input_size))


@dataclass(frozen=True)
class DesignCost:
    """What a design costs, from the built net and the cost model (nothing timed).

    ``macs`` is the test-time forward: the trunk and the main head, the auxiliary heads dropped as
    the paper drops them. ``macs_training`` adds the aux heads' forward when the design trains them.
    ``stage_macs`` splits ``macs_training`` by :data:`STAGES`.
    """

    design: Design
    input_size: int
    num_classes: int
    params: int  # at training time: the aux heads' too when the design trains them
    params_inference: int  # the trunk and main head only
    macs: int
    macs_training: int
    fc_params: int  # the classifier's linear layer: GAP's 1,024 x classes, or the flattened map's
    width: int  # inception5b's output channels (1,024 in the paper)
    stage_macs: dict[str, int]
    stage_params: dict[str, int]
    rows: list[CostRow] = field(repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("rows", "design")}
        return {"design": self.design.to_dict(), **d, "flops": self.flops}


def cost_of(design: Design, *, input_size: int = 224, num_classes: int = 1000) -> DesignCost:
    """The cost of ``design`` at one square input size (checked first, :func:`check_design`)."""
    check_design(design, input_size=input_size, num_classes=num_classes)
    net = _meta_net(design, input_size, num_classes)
    rows = flops(net, input_size)
    kept = [r for r in rows if design.aux or r.module not in ("aux1", "aux2")]
    inference = [r for r in rows if r.module not in ("aux1", "aux2")]
    stage_macs = dict.fromkeys(STAGES, 0)
    stage_params = dict.fromkeys(STAGES, 0)
    for r in kept:
        stage_macs[stage_of(r)] += r.macs
        stage_params[stage_of(r)] += r.params
    return DesignCost(
        design=design, input_size=input_size, num_classes=num_classes, params=totals(kept)["params"],
        params_inference=totals(inference)["params"], macs=totals(inference)["macs"],
        macs_training=totals(kept)["macs"], fc_params=net.fc.weight.numel() + net.fc.bias.numel(),
        width=net.inception5b.out_channels,
        stage_macs=stage_macs, stage_params=stage_params, rows=rows,
    )


def estimate_training_bytes(cost: DesignCost, batch_size: int) -> int:
    """An upper bound of one training step's memory, before anything is allocated: the weights and their
    gradients, and every layer's output and its gradient for ``batch_size`` images, in float32."""
    outputs = sum(math.prod(r.out_shape) for r in cost.rows if cost.design.aux or r.module not in ("aux1", "aux2"))
    return 4 * 2 * (cost.params + batch_size * outputs)


def _refuse_if_too_large(cost: DesignCost, batch_size: int, device: torch.device) -> None:
    if not batch_statistics_defined(batch_size, cost.input_size):
        raise DesignError(
            f"A training step of one image at {cost.input_size} px leaves batch norm one value per channel: time a "
            f"batch of 2 or more, or use {SINGLE_IMAGE_MIN_SIZE} px or more."
        )
    need, free = estimate_training_bytes(cost, batch_size), available_memory(device)
    if free is not None and need > free:
        raise DesignError(
            f"The {cost.design.name} design at {cost.input_size} px and batch {batch_size} needs up to "
            f"{need / 2**30:.1f} GiB for a training step and {device.type} has {free / 2**30:.1f} GiB free: "
            "use a smaller batch or input size."
        )


def _built(design: Design, input_size: int, num_classes: int, device: torch.device) -> GoogLeNet:
    net = GoogLeNet(design.config(num_classes=num_classes, input_size=input_size))
    return net.to(device, memory_format=memory_format(device))


def _loss(net: GoogLeNet, x: torch.Tensor, y: torch.Tensor, aux: bool) -> torch.Tensor:
    # The paper's training loss: main + 0.3 x each auxiliary loss (gnet.net.losses.AUX_WEIGHT).
    out = net(x)
    losses = [nn.functional.cross_entropy(logits, y) for logits in out]
    return losses[0] + AUX_WEIGHT * (losses[1] + losses[2]) if aux else losses[0]


def activation_bytes(
    design: Design, *, input_size: int = 224, num_classes: int = 1000, batch_size: int = 1,
    device: str | torch.device | None = "cpu",
) -> dict[str, int]:
    """Bytes of the tensors autograd saves for backward in one training step, measured.

    Every tensor packed by ``torch.autograd.graph.saved_tensors_hooks`` is counted once per storage
    (a ReLU's output that the next convolution also saves is one buffer), parameters excluded.
    Returns ``{"trunk": ..., "aux": ...}``: ``aux`` holds what only the auxiliary heads save, which a
    design trained without them does not allocate (this forward computes them in any case).
    """
    dev = resolve_device(device)
    cost = cost_of(design, input_size=input_size, num_classes=num_classes)
    _refuse_if_too_large(cost, batch_size, dev)
    net = _built(design, input_size, num_classes, dev).train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    owners: dict[int, tuple[int, set[str]]] = {}  # storage -> (bytes, who saved it)
    inside: list[str] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            owners.setdefault(ptr, (storage.nbytes(), set()))[1].add(inside[-1] if inside else "trunk")
        return t

    def enter(module: nn.Module, args: tuple, head: str) -> None:
        inside.append(head)

    def leave(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        inside.pop()

    handles = []
    for head in HEADS[1:]:
        aux = net.get_submodule(head)
        handles.append(aux.register_forward_pre_hook(lambda m, a, head=head: enter(m, a, head)))
        handles.append(aux.register_forward_hook(leave))
    x = torch.randn(batch_size, 3, input_size, input_size, device=dev).contiguous(memory_format=memory_format(dev))
    y = torch.zeros(batch_size, dtype=torch.long, device=dev)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = _loss(net, x, y, aux=True)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    trunk = sum(n for n, who in owners.values() if "trunk" in who)
    return {"trunk": trunk, "aux": sum(n for n, who in owners.values() if "trunk" not in who)}


@dataclass(frozen=True)
class Latency:
    """Median seconds of one forward (eval, no autograd) and one training step (forward + backward) per
    design and batch size, timed interleaved with the paper's design; ``ratio`` divides by the paper's."""

    device: str
    input_size: int
    repeats: int
    rows: list[dict]  # design, batch_size, pass ("forward" or "train step"), median_s, min_s, max_s, ratio

    def to_dict(self) -> dict:
        return asdict(self)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure_latency(
    designs: Iterable[Design], *, input_size: int = 224, num_classes: int = 1000,
    batch_sizes: Iterable[int] = (1, 32), repeats: int = 5, device: str | torch.device | None = None,
    progress: Callable[[float], None] | None = None,
) -> Latency:
    """Time each design against the paper's, interleaved (paper, design, paper, design, ...) so that a
    shared machine's drift hits both alike; one untimed warm-up pass of each first.

    Every design is checked and its memory estimated (:func:`estimate_training_bytes`) before any net is
    built: a design that would not fit raises :class:`DesignError`.
    """
    dev = resolve_device(device)
    designs = [PAPER, *(d for d in designs if d != PAPER)]
    batch_sizes = list(batch_sizes)
    for d in designs:
        cost = cost_of(d, input_size=input_size, num_classes=num_classes)
        for b in batch_sizes:
            _refuse_if_too_large(cost, b, dev)
    times: dict[tuple[str, int, str], list[float]] = {}
    total, done = len(designs) * len(batch_sizes) * (repeats + 1), 0
    nets = {d: _built(d, input_size, num_classes, dev) for d in designs}
    for b in batch_sizes:
        x = torch.randn(b, 3, input_size, input_size, device=dev).contiguous(memory_format=memory_format(dev))
        y = torch.zeros(b, dtype=torch.long, device=dev)
        for rep in range(repeats + 1):  # repeat 0 warms up
            for d, net in nets.items():
                def forward() -> None:
                    with torch.inference_mode():
                        net.eval()(x)

                def train_step() -> None:
                    net.train().zero_grad(set_to_none=True)
                    _loss(net, x, y, d.aux).backward()

                for kind, fn in (("forward", forward), ("train step", train_step)):
                    seconds = _timed(fn, dev)
                    if rep:
                        times.setdefault((d.name, b, kind), []).append(seconds)
                done += 1
                if progress is not None:
                    progress(done / total)
    rows = []
    for (name, b, kind), values in times.items():
        base = statistics.median(times[(PAPER.name, b, kind)])
        rows.append({
            "design": name, "batch_size": b, "pass": kind, "median_s": statistics.median(values),
            "min_s": min(values), "max_s": max(values), "ratio": statistics.median(values) / base,
        })
    return Latency(device=str(dev), input_size=input_size, repeats=repeats, rows=rows)


def stem_terms(input_size: int = 224) -> list[dict]:
    """The convolution cost formula C_out x C_in x K_H x K_W x H_out x W_out, worked through for every
    convolution of each stem's first block, plus two stems nobody built: the paper's 7x7 at stride 1
    (no downsampling) and the same at stride 1 with a quarter of the channels (channels shrunk instead).

    Each row's ``macs`` is the product of its terms; ``cost_model_macs`` is what :mod:`gnet.net.cost`
    gives for the same built layer (they must agree: a test checks it).
    """
    rows = []
    nets = {stem: _meta_net(Design(stem=stem), input_size, 1000) for stem in STEMS}
    with torch.device("meta"):
        hypothetical = {
            "7x7/1, 64 channels (no downsampling)": nn.Conv2d(3, 64, 7, padding=3),
            "7x7/1, 16 channels (channels shrunk instead)": nn.Conv2d(3, 16, 7, padding=3),
        }
    layers = [(f"{stem} stem", net.conv1) for stem, net in nets.items()] + list(hypothetical.items())
    for label, block in layers:
        side = input_size
        for m in block.modules():
            if isinstance(m, nn.MaxPool2d):
                side = -(-side // 2)
            if not isinstance(m, nn.Conv2d):
                continue
            row = layer_cost(m, (m.in_channels, side, side))
            _, h, w = row.out_shape
            kh, kw = m.kernel_size
            rows.append({
                "stem": label, "layer": f"{kh}x{kw}/{m.stride[0]}", "c_out": m.out_channels, "c_in": m.in_channels,
                "k_h": kh, "k_w": kw, "h_out": h, "w_out": w, "macs": m.out_channels * m.in_channels * kh * kw * h * w,
                "cost_model_macs": row.macs,
            })
            side = h
    return rows


@dataclass(frozen=True)
class Claim:
    """What the paper or the course notes claim about one choice, and what the numbers say."""

    choice: str  # "stem", "reductions", "pool_proj", "classifier" or "aux"
    claim: str
    measured: str
    holds: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _x(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _conv1_macs(cost: DesignCost) -> int:
    return sum(r.macs for r in cost.rows if r.name.split(".")[0] == "conv1")


def claims(design: DesignCost, paper: DesignCost) -> list[Claim]:
    """One :class:`Claim` per choice in which ``design`` differs from ``paper``, judged on their costs.

    Where the numbers disagree with the claim, ``holds`` is False and ``measured`` says so.
    """
    d, out = design.design, []
    sm, pm = design.stage_macs, paper.stage_macs
    if d.stem != paper.design.stem:
        mine, theirs = _conv1_macs(design), _conv1_macs(paper)
        half = -(-design.input_size // 2)
        out.append(Claim(
            "stem",
            "The paper's stem shrinks the map first (one 7x7/2 convolution on 3 channels), because convolutions at "
            "full resolution are the expensive ones.",
            f"The {d.stem} stem's first block costs {mine / 1e6:,.0f} M multiply-adds against the paper's conv1 "
            f"{theirs / 1e6:,.0f} M ({mine / theirs:.2f}x), for the same 64 x {half} x {half} output.",
            mine > theirs,
        ))
    inception = [f"inception {i}" for i in (3, 4, 5)]
    body, body_paper = sum(sm[s] for s in inception), sum(pm[s] for s in inception)
    if not d.reductions:
        ratio = body / body_paper
        out.append(Claim(
            "reductions",
            "The 1x1 reductions before the 3x3 and 5x5 convolutions cut the modules' cost several times over.",
            f"Without them the nine modules cost {body / 1e9:.2f} G multiply-adds against {body_paper / 1e9:.2f} G "
            f"({ratio:.2f}x){'' if ratio >= 2 else ': less than the claimed several times'}.",
            ratio >= 2,
        ))
    if not d.pool_proj:
        out.append(Claim(
            "pool_proj",
            "Without the pool branch's 1x1 projection the pooled input passes through whole, so the width grows "
            "with every module (with no reductions either: the paper's Figure 2a, the naive module).",
            f"inception5b outputs {design.width:,} channels against the paper's {paper.width:,}; the modules cost {_x(body, body_paper)} and the net has {_x(design.params_inference, paper.params_inference)} "
            "the parameters at test time.",
            body > body_paper,
        ))
    if d.classifier != paper.design.classifier:
        ratio = design.fc_params / paper.fc_params
        out.append(Claim(
            "classifier",
            "Global average pooling and one linear layer replace AlexNet's and VGG's dense layer on the flattened "
            "map: at 224 px and 1,000 classes about 50 M weights against about 1 M.",
            f"The flattened classifier holds {design.fc_params / 1e6:,.2f} M parameters against "
            f"{paper.fc_params / 1e6:,.2f} M ({ratio:,.1f}x) at {design.input_size} px and {design.num_classes:,} "
            f"classes; it also fixes the input size to {design.input_size} px.",
            ratio > 1,
        ))
    if d.aux != paper.design.aux:
        extra = paper.macs_training - paper.macs
        share_macs, share_params = extra / paper.macs_training, (paper.params - paper.params_inference) / paper.params
        out.append(Claim(
            "aux",
            "The auxiliary heads cost little at training time and nothing at test time, where they are dropped.",
            f"They add {extra / 1e6:,.1f} M multiply-adds to a training forward ({share_macs:.1%}) and nothing at test "
            f"time, but hold {share_params:.0%} of the training-time parameters "
            f"({(paper.params - paper.params_inference) / 1e6:.1f} M, mostly their 2,048 x 1,024 dense layers).",
            share_macs < 0.05,
        ))
    return out


@dataclass(frozen=True)
class DesignComparison:
    """Designs beside the paper's at one input size: costs, claims, and (when measured) activation memory and
    latency. ``designs[0]`` is the paper's."""

    input_size: int
    num_classes: int
    costs: list[DesignCost]
    claims: dict[str, list[Claim]]  # design name -> its claims
    activation_bytes: dict[str, dict[str, int]] | None = None  # design name -> {"trunk", "aux"}, per image
    latency: Latency | None = None

    def table(self) -> list[dict]:
        """One row per design: its numbers and their ratios to the paper's."""
        paper = self.costs[0]
        rows = []
        for c in self.costs:
            row = {
                "design": c.design.name, "params": c.params, "params_inference": c.params_inference,
                "macs": c.macs, "macs_training": c.macs_training, "fc_params": c.fc_params, "width": c.width,
                "params_ratio": c.params / paper.params, "macs_ratio": c.macs / paper.macs,
            }
            if self.activation_bytes is not None:
                act = self.activation_bytes[c.design.name]
                mine = act["trunk"] + (act["aux"] if c.design.aux else 0)
                base = self.activation_bytes[paper.design.name]
                row["activation_bytes"] = mine
                row["activation_ratio"] = mine / (base["trunk"] + base["aux"])
            if self.latency is not None:
                for r in self.latency.rows:
                    if r["design"] == c.design.name:
                        key = f"{'forward' if r['pass'] == 'forward' else 'train'}_b{r['batch_size']}"
                        row[f"{key}_s"], row[f"{key}_ratio"] = r["median_s"], r["ratio"]
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        return {
            "input_size": self.input_size, "num_classes": self.num_classes,
            "designs": [c.to_dict() for c in self.costs], "table": self.table(),
            "claims": {k: [c.to_dict() for c in v] for k, v in self.claims.items()},
            "activation_bytes": self.activation_bytes,
            "latency": self.latency.to_dict() if self.latency is not None else None,
        }


def compare_designs(
    designs: Iterable[Design] = CHOICES, *, input_size: int = 224, num_classes: int = 1000, memory: bool = True,
    latency: bool = True, batch_sizes: Iterable[int] = (1,), repeats: int = 5,
    device: str | torch.device | None = None, progress: Callable[[float], None] | None = None,
) -> DesignComparison:
    """Each design beside the paper's: cost (always), activation memory of one training step (``memory``,
    measured per image at batch 1, or 2 below 47 px where batch norm needs two, on the CPU) and latency (``latency``, on ``device``, interleaved with the paper's).

    Every design is checked before anything runs; a bad size or option raises :class:`DesignError`.
    """
    designs = [PAPER, *(d for d in designs if d != PAPER)]
    costs = [cost_of(d, input_size=input_size, num_classes=num_classes) for d in designs]
    found = {c.design.name: claims(c, costs[0]) for c in costs[1:]}
    steps = len(designs) * memory + (len(designs) if latency else 0)
    done = 0

    def tick(fraction: float = 1.0) -> None:
        if progress is not None and steps:
            progress(min(1.0, (done + fraction) / steps))

    act = None
    if memory:
        act = {}
        b = 1 if batch_statistics_defined(1, input_size) else 2  # batch norm needs two images below 47 px
        for d in designs:
            measured = activation_bytes(d, input_size=input_size, num_classes=num_classes, batch_size=b)
            act[d.name] = {k: v // b for k, v in measured.items()}
            done += 1
            tick(0)
    timed = None
    if latency:
        timed = measure_latency(
            designs, input_size=input_size, num_classes=num_classes, batch_sizes=batch_sizes, repeats=repeats,
            device=device, progress=lambda f: tick(f * len(designs)),
        )
    return DesignComparison(input_size, num_classes, costs, found, act, timed)
