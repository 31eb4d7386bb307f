"""What one analysis of an image holds, and the statistics computed from the tensors it captured.

:func:`gnet.inspect.probe.analyze` runs the forward pass and reads its taps; this module turns the captured
module outputs and logits into per-branch and per-head results, in a few batched operations
(the per-call cost of small operations, not their arithmetic, is what these are written against).
"""

from __future__ import annotations

import functools
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
    "channel_stats",
    "head_results",
    "module_results",
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


@dataclass
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


_JOINED_ELEMENTS = 1 << 16  # module outputs are concatenated up to this size (measured on a CPU at 64 and 224 px)


def channel_stats(outputs: Sequence[Tensor]) -> Tensor:
    """3 x (all channels) on the outputs' device: per-channel sum, sum of squares and non-zero count.

    ``outputs`` are module outputs, each 1 x C x H x W (or C x H x W), in any layout. Each
    reduction over H x W is a matrix-vector product with ones: on a CPU, BLAS's ``mv`` beats
    ``sum``, ``vector_norm`` and ``count_nonzero`` on these short rows. Small consecutive outputs of
    the same height and width are concatenated first (at 64 px: 3a-3b, 4a-4e, 5a-5b), so the net
    takes three reductions per run, not per module: for tiny tensors the cost is per call. Large
    outputs (224 px) are reduced one by one, which is faster than copying them into one.
    Concatenated along their channel dimension, channels_last outputs stay channels_last, and
    the C x (H x W) matrix is a view of either layout: no transposing copy.
    """
    runs: list[list[Tensor]] = []
    size = 0
    for out in outputs:
        if runs and runs[-1][0].shape[-2:] == out.shape[-2:] and size + out.numel() <= _JOINED_ELEMENTS:
            runs[-1].append(out)
            size += out.numel()
        else:
            runs.append([out])
            size = out.numel()
    rows = []
    for run in runs:
        joined = torch.cat(run, dim=-3) if len(run) > 1 else run[0]
        flat = joined.reshape(joined.shape[-3], -1).float()
        ones = flat.new_ones(flat.shape[1])
        rows.append(torch.stack((torch.mv(flat, ones), torch.mv(flat * flat, ones), torch.mv(flat.sign().abs_(), ones))))
    return torch.cat(rows, dim=1)


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
_BRANCH_OFFSETS = (_BRANCH_STARTS - np.repeat(_BRANCH_STARTS[:: len(BRANCHES)], len(BRANCHES))).tolist()  # in its module
_KEEP = np.minimum(_BRANCH_WIDTHS, TOP_CHANNELS).tolist()
_WIDTHS = _BRANCH_WIDTHS.tolist()
_TINY = np.finfo(np.float64).tiny
_CHANNEL_BRANCH = np.repeat(np.arange(len(_BRANCH_WIDTHS)), _BRANCH_WIDTHS)  # each channel's branch
# Ranking every branch's channels in one sort: each channel gets an int64 key that orders by
# branch, then by mean activation (descending), then by channel (so ties keep channel order).
# numpy's stable argsort over a padded branches x widest-branch grid took 0.18 ms, this 0.06 ms (warm, 64 px).
_INDEX_BITS = int(_BRANCH_WIDTHS.max() - 1).bit_length()
_CHANNEL_INDEX = np.concatenate([np.arange(w) for w in _BRANCH_WIDTHS])  # each channel's index in its branch
_KEY_BASE = (_CHANNEL_BRANCH.astype(np.int64) << (32 + _INDEX_BITS)) | _CHANNEL_INDEX
_TOP_SLOTS = np.minimum(_BRANCH_STARTS[:, None] + np.arange(TOP_CHANNELS), _BRANCH_WIDTHS.sum() - 1)


def _top_channels(sums: np.ndarray, kind: str = "quicksort") -> np.ndarray:
    """Branches x TOP_CHANNELS: each branch's channels (index within the branch) by descending ``sums``.

    ``sums`` are float32, one per channel in concatenation order. Slots past a narrow branch's
    width hold another branch's channels: callers keep the first ``_KEEP`` of each row.
    """
    bits = (sums + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into 0.0
    ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # int32 order == float order (IEEE 754, no NaN)
    keys = ((~ascending).astype(np.int64) + (1 << 31)) << _INDEX_BITS | _KEY_BASE
    # The keys are unique, so any ``kind`` of sort gives the same order. Timed in a loop, timsort
    # ("stable") looked fastest, but a loop re-sorting the same keys trains the branch predictor. Timed
    # after a forward, as analyze runs it, numpy's quicksort (vectorised, nearly branch-free where the
    # CPU has AVX2 or AVX-512) beats it: bench/bench_speed.py's "ranking after a forward" row.
    keys.sort(kind=kind)
    return keys[_TOP_SLOTS] & ((1 << _INDEX_BITS) - 1)


@functools.lru_cache(maxsize=16)
def _branch_counts(sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For modules whose outputs have ``sizes`` (H x W, one per module), per branch: H x W as a column,
    the branch's element count, and the unbiased variance's factor count / (count - 1).

    Constants of the input size (one per size the app or a script uses), so not recomputed per analysis.
    """
    hw = np.repeat(np.array(sizes, dtype=np.float64), len(BRANCHES))
    counts = _BRANCH_WIDTHS * hw
    return hw[:, None], counts, counts / np.maximum(counts - 1, 1)


def module_results(acts: dict[str, Tensor], stats: np.ndarray) -> dict[str, ModuleResult]:
    """Every module's per-branch statistics from :func:`channel_stats`' 3 x (all channels) float32 array.

    ``acts`` holds the modules' outputs as captured (1 x C x H x W, on the CPU).

    All 36 branches at once, as array arithmetic; only the result objects are built one by one.
    Written for few array operations: after a forward pass each costs several microseconds
    (cold caches and predictors), whatever its size.
    """
    shapes = [acts[m].shape for m in INCEPTION_MODULES]
    hw, counts, unbiased = _branch_counts(tuple(s[-1] * s[-2] for s in shapes))
    ranked = _top_channels(stats[0])
    sums, energies, nonzeros = np.add.reduceat(stats, _BRANCH_STARTS, axis=1, dtype=np.float64)  # per branch
    means = sums / counts
    stds = np.sqrt(np.maximum(energies / counts - means * means, 0.0) * unbiased)
    per_module = energies.reshape(-1, len(BRANCHES))
    # A module whose branches are all dead has energy 0 and shares 0 (0 / tiny): no division by zero.
    shares = per_module / np.maximum(per_module.sum(1, keepdims=True), _TINY)
    top_means = (stats[0][_BRANCH_STARTS[:, None] + ranked] / hw).tolist()  # float32 / float64: float64
    rows = np.stack((means, stds, 1.0 - nonzeros / counts, energies, shares.reshape(-1))).T.tolist()
    results: dict[str, dict[str, BranchResult]] = {m: {} for m in INCEPTION_MODULES}
    for point, offset, width, (mean, std, zeros, energy, share), top, top_mean, keep in zip(
        BRANCH_POINTS, _BRANCH_OFFSETS, _WIDTHS, rows, ranked.tolist(), top_means, _KEEP
    ):
        results[point.module][point.branch] = BranchResult(
            name=point.branch, module_output=acts[point.module], offset=offset, channels=width, mean=mean, std=std,
            zero_fraction=zeros, energy=energy, energy_share=share, top_channels=top[:keep],
            top_channel_means=top_mean[:keep],
        )
    return {m: ModuleResult(m, tuple(shape[1:]), results[m]) for m, shape in zip(INCEPTION_MODULES, shapes)}


_HEAD_ROWS = np.arange(len(HEADS))[:, None]


def head_results(logits: dict[str, Tensor], classes: Sequence[str], top: int, trained: dict[str, bool]):
    """Each head's top-k, entropy, agreement with and KL divergence to the main head, in a few array ops.

    In numpy (3 x classes numbers: torch's per-call cost was most of the time) and float64: the KL
    of two close heads is a small difference of large terms, and float32 got its fourth digit wrong.
    """
    k = min(top, len(classes))
    z = np.array([logits[h].numpy() for h in HEADS], dtype=np.float64)  # 3 x C, main first
    z -= z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    probs = np.exp(log_probs)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # ties keep class order
    values = probs[_HEAD_ROWS, order].tolist()
    entropy = (-(probs * log_probs).sum(1)).tolist()
    # KL(main || head): how much the head's distribution misses the main head's.
    kl = (probs[0] * (log_probs[0] - log_probs)).sum(1).tolist()
    indices = order.tolist()
    probs32 = probs.astype(np.float32)
    results = {}
    for i, h in enumerate(HEADS):
        results[h] = HeadResult(
            name=h,
            logits=logits[h],
            probs=torch.from_numpy(probs32[i]),
            top=[Prediction(c, classes[c], p) for p, c in zip(values[i], indices[i])],
            entropy=entropy[i],
            agrees_with_main=indices[i][0] == indices[0][0],
            kl_to_main=kl[i],
            trained=trained.get(h, False),
        )
    return results
