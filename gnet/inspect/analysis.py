"""What one analysis of an image holds, and the statistics computed from the tensors it captured.

:func:`gnet.inspect.probe.analyze` runs the forward pass and reads its taps; this module turns the captured
module outputs and logits into per-branch and per-head results. The statistics themselves are one compiled call
(:func:`gnet.inspect.compiled.statistics`): right after a forward, each small torch or numpy operation costs
several microseconds whatever its size, so :func:`results` only builds the result objects from its arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..net.layers import BRANCH_POINTS, BRANCHES, HEADS, INCEPTION_MODULES, branch_channels

__all__ = [
    "TOP_CHANNELS",
    "Analysis",
    "BranchResult",
    "HeadResult",
    "ModuleResult",
    "Prediction",
    "results",
    "to_cpu",
]

TOP_CHANNELS = 8  # most active channels kept per branch


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    prob: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "prob": self.prob}


@dataclass(slots=True)  # 36 are built after every forward: with slots and positional arguments, 51 us, not 69
class BranchResult:
    """One branch's statistics, and its output (C x H x W, CPU): a slice of its module's output."""

    name: str
    module_output: Tensor = field(repr=False)  # the whole module's 1 x C x H x W output, as captured
    offset: int  # where the branch's channels start in it
    channels: int
    mean: float
    std: float
    zero_fraction: float
    energy: float
    energy_share: float
    top_channels: list[int]
    top_channel_means: list[float]

    @property
    def activation(self) -> Tensor:
        """The branch's output: a view, taken when asked for (36 views took ~0.1 to 0.2 ms of every analysis)."""
        return self.module_output[0, self.offset : self.offset + self.channels]

    def to_dict(self) -> dict[str, Any]:
        """The statistics (not the activation)."""
        return {
            "channels": self.channels,
            "mean": self.mean,
            "std": self.std,
            "zero_fraction": self.zero_fraction,
            "energy": self.energy,
            "energy_share": self.energy_share,
            "top_channels": self.top_channels,
        }


@dataclass
class ModuleResult:
    name: str
    output_shape: tuple[int, ...]
    branches: dict[str, BranchResult]


@dataclass
class HeadResult:
    """One classifier's output and how it relates to the main head."""

    name: str
    logits: Tensor
    probs: Tensor
    top: list[Prediction]
    entropy: float
    agrees_with_main: bool
    kl_to_main: float
    trained: bool

    def to_dict(self) -> dict[str, Any]:
        """Everything but the tensors: the top predictions and how the head relates to main."""
        return {
            "name": self.name,
            "top": [p.to_dict() for p in self.top],
            "entropy": self.entropy,
            "agrees_with_main": self.agrees_with_main,
            "kl_to_main": self.kl_to_main,
            "trained": self.trained,
        }


@dataclass
class Analysis:
    """Everything one forward pass revealed about one image. All tensors are detached, on the CPU."""

    card: dict[str, Any]
    device: str
    input: Tensor
    image: np.ndarray
    stem: dict[str, Tensor]
    modules: dict[str, ModuleResult]
    heads: dict[str, HeadResult]
    timing_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the tensors, as JSON-ready data (the CLI's ``analyze --json``)."""
        return {
            "model": self.card,
            "device": self.device,
            "heads": {name: [p.to_dict() for p in head.top] for name, head in self.heads.items()},
            "head_summary": {
                name: {
                    "entropy": h.entropy,
                    "agrees_with_main": h.agrees_with_main,
                    "kl_to_main": h.kl_to_main,
                    "trained": h.trained,
                }
                for name, h in self.heads.items()
            },
            "modules": {
                name: {
                    "output_shape": list(m.output_shape),
                    "branches": {b: r.to_dict() for b, r in m.branches.items()},
                }
                for name, m in self.modules.items()
            },
            "timing_ms": self.timing_ms,
        }


def to_cpu(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The tensors on the CPU, through one copy (one host synchronisation on a GPU, not one per tensor)."""
    if not tensors or tensors[0].device.type == "cpu":
        return list(tensors)
    flat = torch.cat([t.float().reshape(-1) for t in tensors]).cpu()
    return [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


# The 36 branches in concatenation order (gnet.net.layers.BRANCH_POINTS) and where each one's channels
# sit: constants of the architecture, computed once (reading widths off the modules walks torch's
# __getattr__ hundreds of times, and per call this costs more than the statistics themselves).
_BRANCH_WIDTHS = np.array([branch_channels(p.module, p.branch) for p in BRANCH_POINTS])
_BRANCH_STARTS = np.cumsum(np.concatenate(([0], _BRANCH_WIDTHS[:-1])))  # in the concatenation of all modules
# each branch's first channel in its module's output
_BRANCH_OFFSETS = (_BRANCH_STARTS - np.repeat(_BRANCH_STARTS[:: len(BRANCHES)], len(BRANCHES))).tolist()
_KEEP = np.minimum(_BRANCH_WIDTHS, TOP_CHANNELS).tolist()
_WIDTHS = _BRANCH_WIDTHS.tolist()


def results(acts: dict[str, Tensor], logits: Tensor, classes: Sequence[str], top: int, trained: dict[str, bool],
            ) -> tuple[dict[str, ModuleResult], dict[str, HeadResult]]:
    """Every module's per-branch statistics, and each head's top-k, entropy, agreement with and KL divergence to
    the main head.

    ``acts`` holds the modules' outputs as captured (1 x C x H x W, on the CPU), ``logits`` the heads'
    (heads x C, :data:`gnet.net.layers.HEADS` order). All of it is computed in one compiled call
    (:mod:`gnet.inspect.compiled`); only the result objects are built one by one.
    """
    from .compiled import statistics  # numba: imported on the first analysis, not with gnet

    outputs = [acts[m] for m in INCEPTION_MODULES]
    rows, ranked, top_means, probs, order, top_probs, entropies, kls = statistics(
        outputs, _BRANCH_WIDTHS, len(BRANCHES), TOP_CHANNELS, logits, min(top, len(classes)))
    branches: dict[str, dict[str, BranchResult]] = {m: {} for m in INCEPTION_MODULES}
    for point, offset, width, (mean, std, zeros, energy, share), best, best_means, keep in zip(
        BRANCH_POINTS, _BRANCH_OFFSETS, _WIDTHS, rows.tolist(), ranked.tolist(), top_means.tolist(), _KEEP
    ):
        branches[point.module][point.branch] = BranchResult(  # positional (see BranchResult)
            point.branch, acts[point.module], offset, width, mean, std, zeros, energy, share, best[:keep],
            best_means[:keep],
        )
    modules = {m: ModuleResult(m, tuple(out.shape[1:]), branches[m]) for m, out in zip(INCEPTION_MODULES, outputs)}
    indices, values, entropy, kl = order.tolist(), top_probs.tolist(), entropies.tolist(), kls.tolist()
    heads = {
        h: HeadResult(
            name=h,
            logits=z,
            probs=p,
            top=[Prediction(c, classes[c], v) for v, c in zip(values[i], indices[i])],
            entropy=entropy[i],
            agrees_with_main=indices[i][0] == indices[0][0],
            kl_to_main=kl[i],
            trained=trained.get(h, False),
        )
        for i, (h, z, p) in enumerate(zip(HEADS, logits.unbind(), torch.from_numpy(probs).unbind()))
    }
    return modules, heads
