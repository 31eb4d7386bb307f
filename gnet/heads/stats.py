"""aux1, aux2 and main compared over a whole labelled set: accuracy, confusion, calibration, agreement.

On one image the three heads usually agree at 99%, which teaches little; over a test set the
differences show: which classes an early head confuses, whether it is over-confident, and
which images it gets right where main does not. Everything here is computed from a
:class:`gnet.heads.logits.HeadLogitSet` with numpy, in milliseconds for 10,000 images.

Definitions (each pinned by ``tests/gnet/heads/test_stats.py`` against a direct computation):

- **confidence**: a head's top-1 softmax probability; **entropy** in nats.
- **ECE**, expected calibration error (Guo et al., "On Calibration of Modern Neural Networks",
  ICML 2017): confidences fall into 15 equal-width bins ``((m-1)/15, m/15]`` (the first bin
  also takes 0); ECE = sum over bins of (images in bin / N) x |accuracy in bin - mean
  confidence in bin|. The reliability diagram plots the same bins.
- **agreement** of two heads: the share of images on which their top-1 classes are equal.
- **right where main is wrong** (and the reverse): the share of labelled images that a head
  classifies correctly while main does not.
- **disagreement**: an image where aux1's or aux2's top-1 differs from main's, ranked by
  KL(main || aux) in nats (the larger over the disagreeing aux heads), the measure of
  :attr:`gnet.inspect.analysis.HeadResult.kl_to_main`.

Statistics that need labels use only the images whose label is known (>= 0); with none,
they are None, and agreement, confidence and entropy are still given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..net.layers import HEADS
from .logits import HeadLogitSet

__all__ = [
    "CALIBRATION_BINS",
    "Disagreement",
    "HeadComparison",
    "HeadStats",
    "Reliability",
    "compare_heads",
    "disagreements",
    "expected_calibration_error",
    "gap_margin",
    "reliability",
]

CALIBRATION_BINS = 15
HISTOGRAM_BINS = 20
TOP_K = 5
GALLERY_TOP = 3  # each head's top classes shown with a disagreement


@dataclass(frozen=True)
class Reliability:
    """The reliability diagram's bins: edges (bins + 1), and per bin the count, mean confidence and accuracy."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray  # NaN for an empty bin
    accuracy: np.ndarray  # NaN for an empty bin

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "count": self.count.tolist(),
            "confidence": _nan_to_none(self.confidence),
            "accuracy": _nan_to_none(self.accuracy),
        }


def gap_margin(a: float, b: float, n: int) -> float:
    """Two standard errors of the difference of accuracies ``a`` and ``b``, each on ``n`` images: a smaller gap is
    chance (0.7 points for two accuracies near 93% on 10,000 images).

    The two are taken as independent samples. Two heads scored on the same images err together
    more often than that, so the margin is on the wide side: it calls fewer gaps real, not more.
    """
    return 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / max(n, 1))


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def _maybe_list(values: np.ndarray | None) -> list | None:
    return None if values is None else values.tolist()


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin m (0-based) holds confidences in (m/bins, (m+1)/bins]; 0 goes to the first bin."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> Reliability:
    """Per confidence bin: how many images, their mean confidence and their accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = _bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return Reliability(np.linspace(0.0, 1.0, bins + 1), count, mean_conf, accuracy)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE: the count-weighted mean gap between accuracy and confidence over ``bins`` equal-width bins."""
    r = reliability(confidence, correct, bins)
    filled = r.count > 0
    if not filled.any():
        return float("nan")
    gaps = np.abs(r.accuracy[filled] - r.confidence[filled])
    return float((r.count[filled] * gaps).sum() / r.count.sum())


@dataclass(frozen=True)
class HeadStats:
    """One head over the set. Label-dependent fields are None when no image is labelled."""

    head: str
    top1: float | None
    top5: float | None
    ece: float | None
    per_class: np.ndarray | None  # accuracy per true class (NaN where a class has no image)
    confusion: np.ndarray | None  # true class x predicted class counts, over the labelled images
    reliability: Reliability | None
    mean_confidence: float
    mean_entropy: float
    confidence_hist: np.ndarray  # counts over HISTOGRAM_BINS bins of [0, 1]
    confidence_hist_wrong: np.ndarray | None  # the same, for the misclassified images only
    entropy_hist: np.ndarray  # counts over HISTOGRAM_BINS bins of [0, ln(classes)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "top1": self.top1,
            "top5": self.top5,
            "ece": self.ece,
            "per_class": None if self.per_class is None else _nan_to_none(self.per_class),
            "confusion": _maybe_list(self.confusion),
            "reliability": None if self.reliability is None else self.reliability.to_dict(),
            "mean_confidence": self.mean_confidence,
            "mean_entropy": self.mean_entropy,
            "confidence_hist": self.confidence_hist.tolist(),
            "confidence_hist_wrong": _maybe_list(self.confidence_hist_wrong),
            "entropy_hist": self.entropy_hist.tolist(),
        }


@dataclass(frozen=True)
class HeadComparison:
    """The three heads over one set: per-head statistics and how each relates to main."""

    data: str
    origin: str
    classes: list[str]
    images: int
    labelled: int
    heads: dict[str, HeadStats]
    agreement: np.ndarray  # heads x heads, in HEADS order
    right_where_main_wrong: dict[str, float] | None
    wrong_where_main_right: dict[str, float] | None
    trained: dict[str, bool]

    def table(self) -> list[dict[str, Any]]:
        """One row per head: the CLI's table and CSV."""
        right, wrong = self.right_where_main_wrong or {}, self.wrong_where_main_right or {}
        return [
            {
                "head": h,
                "trained": self.trained.get(h, False),
                "top1": s.top1,
                "top5": s.top5,
                "ece": s.ece,
                "mean_confidence": s.mean_confidence,
                "mean_entropy": s.mean_entropy,
                "agrees_with_main": float(self.agreement[HEADS.index(h), 0]),
                "right_where_main_wrong": right.get(h),
                "wrong_where_main_right": wrong.get(h),
            }
            for h, s in self.heads.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "origin": self.origin,
            "classes": list(self.classes),
            "images": self.images,
            "labelled": self.labelled,
            "table": self.table(),
            "heads": {h: s.to_dict() for h, s in self.heads.items()},
            "agreement": {"heads": list(HEADS), "matrix": self.agreement.tolist()},
            "calibration_bins": CALIBRATION_BINS,
        }


def _entropy(probs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(probs > 0, probs * np.log(probs), 0.0).sum(axis=1)


def _head_stats(head: str, probs: np.ndarray, labels: np.ndarray, classes: int) -> HeadStats:
    confidence = probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    entropy = _entropy(probs)
    unit = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    conf_hist = np.histogram(confidence, bins=unit)[0]
    ent_hist = np.histogram(entropy, bins=unit * np.log(classes))[0]
    known = labels >= 0
    common = dict(
        head=head,
        mean_confidence=float(confidence.mean()) if len(probs) else float("nan"),
        mean_entropy=float(entropy.mean()) if len(probs) else float("nan"),
        confidence_hist=conf_hist,
        entropy_hist=ent_hist,
    )
    if not known.any():
        return HeadStats(
            top1=None, top5=None, ece=None, per_class=None, confusion=None, reliability=None,
            confidence_hist_wrong=None, **common,
        )
    y, p, pred, conf = labels[known], probs[known], predicted[known], confidence[known]
    correct = pred == y
    k = min(TOP_K, classes)
    top_k = np.argpartition(-p, k - 1, axis=1)[:, :k]
    confusion = np.bincount(y * classes + pred, minlength=classes * classes).reshape(classes, classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    return HeadStats(
        top1=float(correct.mean()),
        top5=float((top_k == y[:, None]).any(axis=1).mean()),
        ece=expected_calibration_error(conf, correct),
        per_class=per_class,
        confusion=confusion,
        reliability=reliability(conf, correct),
        confidence_hist_wrong=np.histogram(conf[~correct], bins=unit)[0],
        **common,
    )


def compare_heads(logit_set: HeadLogitSet, trained: dict[str, bool] | None = None) -> HeadComparison:
    """Every statistic of the module docstring for the three heads of ``logit_set``.

    ``trained`` is the model card's ``heads_trained``, carried so that tables can flag an
    untrained head (torchvision's ImageNet aux heads).
    """
    classes = len(logit_set.classes)
    labels = logit_set.labels
    probs = {h: logit_set.probs(h) for h in HEADS}
    predicted = {h: p.argmax(axis=1) for h, p in probs.items()}
    heads = {h: _head_stats(h, probs[h], labels, classes) for h in HEADS}
    n = len(logit_set)
    agreement = np.array(
        [[float((predicted[a] == predicted[b]).mean()) if n else float("nan") for b in HEADS] for a in HEADS]
    )
    known = labels >= 0
    right = wrong = None
    if known.any():
        correct = {h: predicted[h][known] == labels[known] for h in HEADS}
        right = {h: float((correct[h] & ~correct["main"]).mean()) for h in HEADS}
        wrong = {h: float((~correct[h] & correct["main"]).mean()) for h in HEADS}
    return HeadComparison(
        data=logit_set.name,
        origin=logit_set.origin,
        classes=list(logit_set.classes),
        images=n,
        labelled=int(known.sum()),
        heads=heads,
        agreement=agreement,
        right_where_main_wrong=right,
        wrong_where_main_right=wrong,
        trained=dict(trained or dict.fromkeys(HEADS, True)),
    )


@dataclass(frozen=True)
class Disagreement:
    """One image where an auxiliary head and main pick different classes."""

    index: int  # position in the set
    label: int  # true class, -1 when unknown
    kl: float  # KL(main || aux) in nats, for the aux head below
    aux: str  # the disagreeing aux head with the larger KL
    top: dict[str, list[tuple[int, float]]]  # head -> its top classes (index, probability)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "kl": self.kl,
            "aux": self.aux,
            "top": {h: [{"index": i, "prob": p} for i, p in t] for h, t in self.top.items()},
        }


def disagreements(logit_set: HeadLogitSet, limit: int | None = 24) -> list[Disagreement]:
    """The images where aux1 or aux2 disagrees with main, largest KL(main || aux) first (at most ``limit``)."""
    probs = {h: logit_set.probs(h) for h in HEADS}
    main = probs["main"]
    main_top1 = main.argmax(axis=1)
    with np.errstate(divide="ignore"):
        log_main = np.log(main)
    kl, differs = [], []
    for aux in HEADS[1:]:
        with np.errstate(divide="ignore", invalid="ignore"):
            kl.append(np.where(main > 0, main * (log_main - np.log(probs[aux])), 0.0).sum(axis=1))
        differs.append(probs[aux].argmax(axis=1) != main_top1)
    # An aux head's KL counts only where its top-1 differs from main's.
    masked = np.where(np.stack(differs), np.stack(kl), -1.0)  # 2 x N; KL itself is never negative
    best, which = masked.max(axis=0), masked.argmax(axis=0)
    order = [int(i) for i in np.argsort(-best, kind="stable") if best[i] >= 0]
    k = min(GALLERY_TOP, len(logit_set.classes))
    found = []
    for i in order[:limit]:
        top = {}
        for h in HEADS:
            idx = np.argsort(-probs[h][i], kind="stable")[:k]
            top[h] = [(int(c), float(probs[h][i, c])) for c in idx]
        found.append(Disagreement(i, int(logit_set.labels[i]), float(best[i]), HEADS[1 + int(which[i])], top))
    return found
