"""Linear classifier probes: how much of the answer a linear layer can read from one depth's features.

Alain and Bengio (2016, "Understanding intermediate layers using linear classifier probes",
arXiv:1610.01644) fit one multinomial logistic regression per layer on frozen features and
score it on held-out images. On GoogLeNet the features are a point's output averaged over
space (what global average pooling hands the main head), so the probe at inception5b is the
main head's own form: a linear layer on inception5b's pooled output.

- :func:`record_pooled`: one frozen pass over a set records every capture point's output
  averaged over space (the stem's five points and the nine modules, :func:`gnet.inspect.probe.capture_points`)
  into float16 memory-mapped files, so 60,000 images take bounded memory, and each head's prediction.
- :func:`fit_probe`: one probe on given features.
- :func:`linear_probes`: the curve, one probe per point fitted on one set and scored on another,
  beside the three trained heads' accuracy on the same held-out images.
- :func:`probes`: that curve shipped (the bundled net over Fashion-MNIST), cached or computed.

The fit is full-batch L-BFGS in torch (``torch.optim.LBFGS`` with a strong-Wolfe line search)
on standardized features, with an L2 penalty on the weights: the features of one point fit in
memory as float32 (60,000 x 1,024 is 245 MB), and one matrix product per step uses every core.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DatasetError
from ..guard import exclusive
from ..inspect.evaluation import LabelledImages, batch_size_for, class_folder, fashion_mnist
from ..inspect.probe import capture, capture_points
from ..net.layers import HEADS, modules_read_by
from ..storage import load_asset, stored_or_built
from ..weights.card import LoadedModel

__all__ = [
    "ASSET",
    "HEAD_POINTS",
    "ProbeCurve",
    "ProbeScore",
    "fit_linear",
    "fit_probe",
    "linear_probes",
    "probe_sets",
    "probes",
    "record_pooled",
]

ASSET = "linear_probes"
# The module each trained head reads (the last one that reaches it): main inception5b, aux1 4a, aux2 4d.
HEAD_POINTS: dict[str, str] = {head: modules_read_by(head)[-1] for head in HEADS}
RECORDING = 0.9  # the share of the progress bar the recording pass takes; the fits take the rest
Progress = Callable[[float], None]


@dataclass(frozen=True)
class ProbeScore:
    """One probe's result: held-out accuracy and log-loss (nats), and its accuracy on the images it was fitted on."""

    point: str
    accuracy: float
    log_loss: float
    train_accuracy: float
    train_images: int
    test_images: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "accuracy": round(self.accuracy, 4),
            "log_loss": round(self.log_loss, 4),
            "train_accuracy": round(self.train_accuracy, 4),
            "train_images": self.train_images,
            "test_images": self.test_images,
        }


def _labels(y: Any, num_classes: int, split: str) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if labels.ndim != 1 or len(labels) == 0:
        raise DatasetError(f"The probe's {split} split has no labelled images: give it at least one image per class.")
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise DatasetError(
            f"The probe's {split} split has labels outside 0..{num_classes - 1}: every image needs one of the classes."
        )
    return labels


def fit_linear(
    x: Any, y: torch.Tensor, num_classes: int, *, l2: float = 1e-4, max_iter: int = 100
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight (K x D) and bias (K) of a multinomial logistic regression of labels ``y`` on features ``x``
    (N x D, any float dtype), in the features' own units: ready to be an ``nn.Linear``.

    The fit runs on features standardized with their mean and spread (L-BFGS converges far
    faster on them); ``l2`` weighs the squared norm of those standardized weights against the
    mean cross-entropy, and the standardization is folded back into the returned weight and bias.
    """
    # One float32 copy, standardized in place: 60,000 x 1,024 features cost 245 MB, not three times that.
    features = torch.from_numpy(np.array(x, dtype=np.float32))
    mean = features.mean(0)
    scale = features.std(0, unbiased=False).clamp_min(1e-6)
    features.sub_(mean).div_(scale)
    weight = torch.zeros(features.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-9,
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(torch.addmm(bias, features, weight), y) + l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        folded = weight / scale[:, None]
        return folded.T.contiguous(), bias - mean @ folded


def fit_probe(
    point: str,
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    num_classes: int,
    *,
    l2: float = 1e-4,
    max_iter: int = 100,
) -> ProbeScore:
    """Fit :func:`fit_linear` on ``train_x`` (N x D, any float dtype) and score it on ``test_x``.

    Raises :class:`gnet.errors.DatasetError` when the training split has fewer than 2 classes or a
    label is out of range.
    """
    y_fit, y_test = _labels(train_y, num_classes, "training"), _labels(test_y, num_classes, "held-out")
    if len(torch.unique(y_fit)) < 2:
        raise DatasetError("The probe's training split holds fewer than 2 classes: a classifier needs at least 2.")
    weight, bias = fit_linear(train_x, y_fit, num_classes, l2=l2, max_iter=max_iter)
    with torch.no_grad():
        fit_logits = _logits(train_x, weight, bias)
        test_logits = _logits(test_x, weight, bias)
        log_loss = float(F.cross_entropy(test_logits.double(), y_test))
    if not math.isfinite(log_loss):
        raise DatasetError(f"The probe at {point} did not converge: its features hold values that are not finite.")
    return ProbeScore(
        point=point,
        accuracy=float((test_logits.argmax(1) == y_test).double().mean()),
        log_loss=log_loss,
        train_accuracy=float((fit_logits.argmax(1) == y_fit).double().mean()),
        train_images=len(y_fit),
        test_images=len(y_test),
    )


def _logits(x: Any, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.addmm(bias, torch.from_numpy(np.asarray(x, dtype=np.float32)), weight.T)


@dataclass(frozen=True)
class ProbeCurve:
    """One probe per capture point in depth order, and each trained head's accuracy on the same held-out images.

    ``heads`` is empty when the set has classes the weights do not know (the heads answer other questions).
    """

    scores: tuple[ProbeScore, ...]
    heads: dict[str, float]
    fit_data: str
    test_data: str
    classes: list[str]

    def at(self, point: str) -> ProbeScore:
        for score in self.scores:
            if score.point == point:
                return score
        raise KeyError(point)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fit_data": self.fit_data,
            "test_data": self.test_data,
            "classes": list(self.classes),
            "probes": [score.to_dict() for score in self.scores],
            "heads": {head: {"point": HEAD_POINTS[head], "accuracy": round(acc, 4)} for head, acc in self.heads.items()},
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "points": np.array([s.point for s in self.scores]),
            "accuracy": np.array([s.accuracy for s in self.scores]),
            "log_loss": np.array([s.log_loss for s in self.scores]),
            "train_accuracy": np.array([s.train_accuracy for s in self.scores]),
            "images": np.array([self.scores[0].train_images, self.scores[0].test_images]),
            "head_names": np.array(list(self.heads), dtype=str),
            "head_accuracy": np.array(list(self.heads.values()), dtype=np.float64),
            "names": np.array([self.fit_data, self.test_data]),
            "classes": np.array(self.classes),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ProbeCurve:
        n_fit, n_test = (int(v) for v in arrays["images"])
        scores = tuple(
            ProbeScore(str(p), float(a), float(ll), float(t), n_fit, n_test)
            for p, a, ll, t in zip(arrays["points"], arrays["accuracy"], arrays["log_loss"], arrays["train_accuracy"])
        )
        heads = {str(h): float(a) for h, a in zip(arrays["head_names"], arrays["head_accuracy"])}
        fit_data, test_data = (str(v) for v in arrays["names"])
        return cls(scores, heads, fit_data, test_data, [str(c) for c in arrays["classes"]])


def record_pooled(
    loaded: LoadedModel, data: LabelledImages, folder: Path, *, points: dict[str, nn.Module] | None = None,
    batch_size: int | None = None, progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One frozen pass over ``data``: each point's output averaged over space (N x C float16, memory-mapped
    in ``folder``; an output that is already N x C is kept as it is) and each head's predicted class (N, int64).

    ``points`` defaults to every capture point (:func:`gnet.inspect.probe.capture_points`).
    ``progress`` gets the images done. The model is taken per batch (:func:`gnet.guard.exclusive`),
    so other users of a shared model wait one batch at most.
    """
    net = loaded.net
    points = capture_points(net) if points is None else points
    n = len(data)
    features: dict[str, np.ndarray] = {}
    predicted = {head: np.zeros(n, dtype=np.int64) for head in HEADS}
    for x, _, indices in data.batches(batch_size or batch_size_for(loaded.card.input_size)):
        start, end = int(indices[0]), int(indices[-1]) + 1
        with exclusive(net, training=False), torch.inference_mode(), capture(net, points) as store:
            out = net(x.to(loaded.device))
            pooled = {name: store[name].flatten(2).mean(2) if store[name].ndim > 2 else store[name] for name in points}
        for name, value in pooled.items():
            if name not in features:
                features[name] = np.lib.format.open_memmap(
                    folder / f"{name}.npy", mode="w+", dtype=np.float16, shape=(n, value.shape[1])
                )
            features[name][start:end] = value.half().cpu().numpy()
        for head in HEADS:
            predicted[head][start:end] = getattr(out, head).argmax(1).cpu().numpy()
        if progress is not None:
            progress(end)
    return features, predicted


def linear_probes(
    loaded: LoadedModel, fit_data: LabelledImages, test_data: LabelledImages, *, l2: float = 1e-4,
    max_iter: int = 100, batch_size: int | None = None, progress: Progress | None = None,
) -> ProbeCurve:
    """Fit one probe per capture point of ``loaded`` on ``fit_data`` and score it on ``test_data``.

    Both sets must be labelled with the same classes. ``progress`` gets the fraction done: the
    recording pass over both sets, then the fits. Raises :class:`DatasetError` for unlabelled sets.
    """
    for data in (fit_data, test_data):
        if not data.labelled:
            raise DatasetError(f"{data.name} has images without a label: a probe is fitted and scored on labelled images.")
    if list(fit_data.classes) != list(test_data.classes):
        raise DatasetError(f"{fit_data.name} and {test_data.name} name different classes: split one labelled set in two.")
    total = len(fit_data) + len(test_data)
    report = progress or (lambda _done: None)
    with tempfile.TemporaryDirectory(prefix="gnet-probes-") as tmp:
        fit_dir, test_dir = Path(tmp, "fit"), Path(tmp, "test")
        fit_dir.mkdir()
        test_dir.mkdir()
        fit_x, _ = record_pooled(
            loaded, fit_data, fit_dir, batch_size=batch_size, progress=lambda done: report(RECORDING * done / total)
        )
        test_x, predicted = record_pooled(
            loaded, test_data, test_dir, batch_size=batch_size,
            progress=lambda done: report(RECORDING * (len(fit_data) + done) / total),
        )
        scores = []
        for i, point in enumerate(fit_x):
            scores.append(fit_probe(
                point, fit_x[point], fit_data.labels, test_x[point], test_data.labels, len(fit_data.classes),
                l2=l2, max_iter=max_iter,
            ))
            report(RECORDING + (1 - RECORDING) * (i + 1) / len(fit_x))
        del fit_x, test_x  # the memory maps close before their folder goes
    heads: dict[str, float] = {}
    if set(test_data.classes) <= set(loaded.classes):  # the heads know every class: score them on the same images
        to_weights = np.array([loaded.classes.index(c) for c in test_data.classes])
        truth = to_weights[test_data.labels.numpy()]
        heads = {head: float((predicted[head] == truth).mean()) for head in HEADS}
    return ProbeCurve(tuple(scores), heads, fit_data.name, test_data.name, list(fit_data.classes))


def probe_sets(loaded: LoadedModel, folder: Path | str | None = None) -> tuple[LabelledImages, LabelledImages]:
    """The (fit, held-out) sets a probe curve uses: a labelled folder (classes of its own, or the weights')
    split 80/20 within each class, or, without one, the Fashion-MNIST training and test splits. Raises
    :class:`DatasetError` for a bad folder or a missing dataset."""
    if folder is not None:
        return class_folder(loaded, folder).split(0.2)
    return fashion_mnist(loaded, "train"), fashion_mnist(loaded, "test")


def probes(
    loaded: LoadedModel, folder: Path | str | None = None, *, build: bool = True, progress: Progress | None = None,
) -> ProbeCurve | None:
    """:func:`linear_probes` on :func:`probe_sets`, shipped, cached or computed (with ``progress``).

    The shipped curve (the bundled net over Fashion-MNIST) is used only for the weights and data
    its card names; anything else is read from the disk cache or computed and cached, keyed by the
    weights' hash and both sets. With ``build=False``, None instead of computing. Without a folder
    and without Fashion-MNIST installed, the shipped curve for these weights is used if there is one;
    otherwise :class:`DatasetError` says what to install.
    """
    try:
        fit_data, test_data = probe_sets(loaded, folder)
    except DatasetError:
        shipped = None if folder is not None else load_asset(ASSET, {"weights": loaded.weights_hash})
        if shipped is None:
            raise
        return ProbeCurve.from_arrays(shipped)
    key = {"weights": loaded.weights_hash, "fit": fit_data.key, "test": test_data.key}
    compute = (lambda: linear_probes(loaded, fit_data, test_data, progress=progress).to_arrays()) if build else None
    found = stored_or_built(ASSET, key, compute)
    return None if found is None else ProbeCurve.from_arrays(found[0])
