"""The design lab's choices: :class:`Design`, the paper's and every one-choice change, their checks,
and what each costs by the cost model (:func:`cost_of`), nothing run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ...errors import DesignError
from ..cost import CostRow, flops, layer_cost, totals
from ..model import CLASSIFIERS, MAX_INPUT_SIZE, MIN_INPUT_SIZE, STEMS, GoogLeNet, GoogLeNetConfig

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
