"""Early exits: could an easy image stop at an auxiliary head and save compute?

The idea is BranchyNet's (Teerapittayanon, McDanel and Kung, "BranchyNet: Fast Inference
via Early Exiting from Deep Neural Networks", ICPR 2016): side classifiers let an image
leave the network as soon as one of them is confident enough. GoogLeNet's paper does NOT
do this: its auxiliary classifiers only add a loss during training and are discarded at
inference (Szegedy et al. 2014, section 5). What follows is an analysis of the trained
auxiliary heads as exits, not the paper's method.

The cascade for a confidence threshold ``t``: an image stops at aux1 when aux1's top-1
probability is at least ``t``, otherwise at aux2 when aux2's is at least ``t``, otherwise
it goes on to main. Its prediction is the class of the head it stopped at.

Its cost is counted in multiply-adds from :func:`gnet.net.cost.flops` rows (not timed), in the
rows' forward order, with their ``module`` field:

- **aux1 exit**: every row of the trunk up to and including the module aux1 reads
  (:data:`gnet.net.layers.AUX_ATTACH`, inception4a), plus aux1's own rows;
- **aux2 exit**: the trunk up to inception4d, plus aux1's rows (computed, and not confident
  enough), plus aux2's;
- **main**: the whole trunk and classifier, plus both auxiliary heads.

When ``t > 1`` no exit test can pass, so the cascade computes no auxiliary head and every
image costs exactly what the network without auxiliary heads costs: the paper's
inference ("main only"). ``t = 0`` sends every image out at aux1 ("aux1 only"). A third
reference is no point of the cascade: the network cut at inception4d, with aux2 as its only
classifier and aux1 not computed ("aux2 only").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..net.cost import CostRow
from ..net.layers import AUX_ATTACH, HEADS
from .logits import HeadLogitSet

__all__ = [
    "BRANCHYNET",
    "DEFAULT_THRESHOLDS",
    "ExitCosts",
    "ExitCurve",
    "ExitPoint",
    "early_exits",
    "exit_costs",
]

BRANCHYNET = (
    'Teerapittayanon, McDanel and Kung, "BranchyNet: Fast Inference via Early Exiting from Deep Neural '
    'Networks", ICPR 2016'
)
# 0.50 to 0.95 in steps of 0.05, then ever closer to 1: confident heads put most images above 0.99.
DEFAULT_THRESHOLDS: tuple[float, ...] = (
    *(round(0.5 + 0.05 * i, 2) for i in range(10)),
    0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999, 1.0,
)
EXITS: tuple[str, ...] = ("aux1", "aux2", "main")  # the order an image meets them


@dataclass(frozen=True)
class ExitCosts:
    """Multiply-adds per image for each way through the cascade (one image, the rows' input size)."""

    input_size: int
    exit_macs: dict[str, int]  # leaving at aux1 / aux2 / main, with every head computed on the way
    main_only: int  # the network without auxiliary heads (the paper's inference)
    aux1_only: int  # the trunk to inception4a and aux1: every image leaves at aux1
    aux2_only: int  # the trunk to inception4d and aux2, aux1 not computed: every image leaves at aux2

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "exit_macs": dict(self.exit_macs),
            "main_only": self.main_only,
            "aux1_only": self.aux1_only,
            "aux2_only": self.aux2_only,
        }


def exit_costs(rows: Sequence[CostRow], input_size: int) -> ExitCosts:
    """Each exit's multiply-adds from :func:`gnet.net.cost.flops` rows (computed at ``input_size``)."""
    aux_rows = {aux: sum(r.macs for r in rows if r.module == aux) for aux in AUX_ATTACH}
    trunk = [r for r in rows if r.module not in AUX_ATTACH]

    def trunk_to(module: str) -> int:
        """Every trunk row up to and including the last row of ``module``."""
        last = max(i for i, r in enumerate(trunk) if r.module == module)
        return sum(r.macs for r in trunk[: last + 1])

    main_only = sum(r.macs for r in trunk)
    aux1 = trunk_to(AUX_ATTACH["aux1"]) + aux_rows["aux1"]
    aux2_only = trunk_to(AUX_ATTACH["aux2"]) + aux_rows["aux2"]
    aux2 = aux2_only + aux_rows["aux1"]
    main = main_only + aux_rows["aux1"] + aux_rows["aux2"]
    return ExitCosts(input_size, {"aux1": aux1, "aux2": aux2, "main": main}, main_only, aux1, aux2_only)


@dataclass(frozen=True)
class ExitPoint:
    """The cascade at one threshold: accuracy (None without labels), mean cost and where images leave."""

    threshold: float
    accuracy: float | None
    mean_macs: float
    share: dict[str, float]  # exit -> share of the images leaving there

    def relative_cost(self, costs: ExitCosts) -> float:
        """Mean cost as a fraction of the network without auxiliary heads."""
        return self.mean_macs / costs.main_only

    def row(self, costs: ExitCosts) -> dict[str, Any]:
        """A flat table row: threshold, accuracy, mean cost, its share of main only, the share leaving at each exit."""
        return {
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "mean_macs": self.mean_macs,
            "relative_cost": self.relative_cost(costs),
            **{f"exit_{e}": self.share[e] for e in EXITS},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "accuracy": self.accuracy, "mean_macs": self.mean_macs, "share": self.share
        }


@dataclass(frozen=True)
class ExitCurve:
    """Accuracy against mean cost as the threshold goes from 0.5 to 1, with the three reference points."""

    costs: ExitCosts
    points: list[ExitPoint]
    main_only: ExitPoint  # threshold above 1: no exit is taken, no aux head computed
    aux1_only: ExitPoint  # threshold 0: every image leaves at aux1
    aux2_only: ExitPoint  # no threshold: the net cut at inception4d, every image leaves at aux2 (threshold 0)
    labelled: int  # the images with a known label: what every accuracy here is measured on

    @property
    def references(self) -> dict[str, ExitPoint]:
        """The three reference points, each head alone: {"main": main_only, "aux1": aux1_only, "aux2": aux2_only}."""
        return {"main": self.main_only, "aux1": self.aux1_only, "aux2": self.aux2_only}

    def best_within(self, fraction: float) -> ExitPoint | None:
        """The most accurate point costing at most ``fraction`` of main-only (None when none is that cheap)."""
        cheap = [p for p in self.points if p.relative_cost(self.costs) <= fraction and p.accuracy is not None]
        return max(cheap, key=lambda p: (p.accuracy, -p.mean_macs), default=None)

    def table(self) -> list[dict[str, Any]]:
        """One :meth:`ExitPoint.row` per threshold: the CLI's table and CSV, the page's table and curve."""
        return [p.row(self.costs) for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        return {
            "idea": BRANCHYNET,
            "note": "GoogLeNet's paper discards the auxiliary heads at inference; this analyses them as exits.",
            "costs": self.costs.to_dict(),
            "main_only": self.main_only.to_dict(),
            "aux1_only": self.aux1_only.to_dict(),
            "aux2_only": self.aux2_only.to_dict(),
            "labelled": self.labelled,
            "points": [p.to_dict() for p in self.points],
        }


def _point(
    threshold: float, confidence: dict[str, np.ndarray], correct: dict[str, np.ndarray], known: np.ndarray,
    costs: ExitCosts, only: tuple[str, int] | None = None,
) -> ExitPoint:
    """The cascade at ``threshold``; with ``only`` (an exit, its cost), every image leaves there at that cost."""
    n = len(confidence["main"])
    if threshold > 1.0:
        # No probability reaches t: the cascade never computes an aux head (the paper's inference).
        only = ("main", costs.main_only)
    if only is not None:
        leave = np.full(n, EXITS.index(only[0]))
        cost = np.full(n, float(only[1]))
    else:
        at_aux1 = confidence["aux1"] >= threshold
        at_aux2 = ~at_aux1 & (confidence["aux2"] >= threshold)
        leave = np.where(at_aux1, 0, np.where(at_aux2, 1, 2))
        cost = np.array([costs.exit_macs[e] for e in EXITS], dtype=np.float64)[leave]
    share = {e: float((leave == i).mean()) if n else float("nan") for i, e in enumerate(EXITS)}
    accuracy = None
    if known.any():
        right = np.stack([correct[e] for e in EXITS])[leave, np.arange(n)]  # each image judged by its exit
        accuracy = float(right[known].mean())
    return ExitPoint(float(threshold), accuracy, float(cost.mean()) if n else float("nan"), share)


def early_exits(
    logit_set: HeadLogitSet, costs: ExitCosts, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> ExitCurve:
    """The cascade's accuracy, mean multiply-adds and exit shares at each threshold.

    Accuracy counts only the labelled images (None without any); cost and shares count every image.
    """
    known = logit_set.labels >= 0
    probs = {h: logit_set.probs(h) for h in HEADS}
    confidence = {h: p.max(axis=1) for h, p in probs.items()}
    correct = {h: p.argmax(axis=1) == logit_set.labels for h, p in probs.items()}
    return ExitCurve(
        costs=costs,
        points=[_point(t, confidence, correct, known, costs) for t in thresholds],
        main_only=_point(float("inf"), confidence, correct, known, costs),
        aux1_only=_point(0.0, confidence, correct, known, costs),
        aux2_only=_point(0.0, confidence, correct, known, costs, only=("aux2", costs.aux2_only)),
        labelled=int(known.sum()),
    )
