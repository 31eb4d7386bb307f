"""The design lab's verdicts: each design beside the paper's (:func:`compare_designs`), and what the
paper and the course notes claim about each choice, judged on the numbers (:func:`claims`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch

from ..model import batch_statistics_defined
from .choices import CHOICES, PAPER, Design, DesignCost, cost_of
from .measured import Latency, activation_bytes, measure_latency

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
