"""Is this image like the data the weights were trained on? An in-domain score for every analysis.

A head's softmax says how sure it is among its classes, never whether the image belongs to
any of them: the bundled Fashion-MNIST net calls a photo of a cat a Bag with 99.6%
(``scripts/calibrate_in_domain.py`` prints the maximum softmax probability next to this
score). The score here is the Mahalanobis distance of Lee et al., "A Simple Unified Framework
for Detecting Out-of-Distribution Samples and Adversarial Attacks" (NeurIPS 2018), with their
feature ensemble:

- at the end of each resolution stage (:data:`gnet.net.layers.STAGE_ENDS`: maxpool2, inception3b,
  inception4e, inception5b), the output's spatial mean is a feature vector;
- per point, class-conditional Gaussians with one shared covariance are fitted to training
  images; an image's distance is the smallest Mahalanobis distance to a class mean;
- each point's distance is standardised by its mean and spread over calibration images, and
  the score is their sum.

Deviations from the paper, and why: Lee et al. weight the points with a logistic regression
fitted on out-of-distribution validation images; here the weights are equal, so nothing is
tuned on the kind of image it must reject. Their input pre-processing (a gradient step) is
left out: it needs a backward pass per image. The covariance is kept as probabilistic PCA
(Tipping and Bishop 1999: the top :data:`COMPONENTS` eigenvectors and the mean of the other
eigenvalues), which keeps the shipped statistics to a few hundred KB.

The threshold is the :data:`THRESHOLD_PERCENTILE` th percentile of the score on calibration
images the fit did not see; ``percentile`` says how many calibration images score lower.
Only weights with calibration statistics get a score (the bundled net:
``assets/fashion_mnist_in_domain.npz``, matched by the weights' sha256); for any other
weights :func:`in_domain` returns None and the app says that no score is available.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inspect.analysis import Analysis
from ..net.layers import STAGE_ENDS
from ..storage import ASSETS_DIR, atomic_write
from ..weights.card import LoadedModel

__all__ = [
    "COMPONENTS",
    "NO_SCORE",
    "REFERENCE_PATH",
    "THRESHOLD_PERCENTILE",
    "InDomain",
    "InDomainReference",
    "calibration_split",
    "fit_reference",
    "in_domain",
    "pooled_features",
    "reference_for",
]

REFERENCE_PATH = ASSETS_DIR / "fashion_mnist_in_domain.npz"
COMPONENTS = 64  # principal directions kept per point; the rest share one variance
SHRINKAGE = 1e-3  # covariance pulled towards its mean eigenvalue, so no direction has zero variance
THRESHOLD_PERCENTILE = 99.0
NO_SCORE = (
    "No in-domain score for these weights: there is no calibration data for them, so nothing here says "
    "whether an image looks like their training data."
)
METHOD = "Mahalanobis distance to the nearest class, summed over the stage ends (Lee et al. 2018)"


@dataclass(frozen=True)
class InDomain:
    """How typical one image is for the weights' training data."""

    score: float  # larger = less typical; the calibration images' scores have mean 0 per point
    percentile: float  # % of the calibration images scoring lower
    in_domain: bool  # score <= threshold
    threshold: float
    reference: str  # what the percentile is measured against

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "percentile": self.percentile,
            "in_domain": self.in_domain,
            "threshold": self.threshold,
            "reference": self.reference,
            "method": METHOD,
        }


@dataclass(frozen=True)
class _Point:
    """One point's class means and its covariance as probabilistic PCA, plus its calibration spread."""

    means: np.ndarray  # classes x D
    basis: np.ndarray  # D x k, principal directions
    variances: np.ndarray  # k
    rest: float  # the mean variance of the other directions
    centre: float  # mean distance over the calibration images
    spread: float  # its standard deviation

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Smallest Mahalanobis distance of each row of ``features`` (N x D) to a class mean."""
        f = np.asarray(features, np.float64)
        best = np.full(len(f), np.inf)
        for mean in self.means:
            r = f - mean
            z = r @ self.basis
            inside = (z**2).sum(1)
            d2 = (z**2 / self.variances).sum(1) + np.maximum((r**2).sum(1) - inside, 0.0) / self.rest
            best = np.minimum(best, d2)
        return np.sqrt(best)


@dataclass(frozen=True)
class InDomainReference:
    """Everything needed to score an image for one set of weights: per point statistics and the calibration scores."""

    weights_sha256: str
    points: dict[str, _Point]
    calibration: np.ndarray  # sorted scores of the calibration images
    meta: dict[str, Any]  # what the fit and calibration data were, how it was made, what was measured

    @property
    def threshold(self) -> float:
        return float(np.percentile(self.calibration, THRESHOLD_PERCENTILE))

    def scores(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """The score of each image, from its pooled features at every point (``{point: N x D}``)."""
        return sum((p.distance(features[name]) - p.centre) / p.spread for name, p in self.points.items())

    def judge(self, score: float) -> InDomain:
        rank = float(np.searchsorted(self.calibration, score, side="left")) / len(self.calibration)
        return InDomain(float(score), 100.0 * rank, bool(score <= self.threshold), self.threshold,
                        str(self.meta.get("calibration", "calibration")))

    def save(self, path: Path) -> Path:
        """Write the statistics (float32, the bases float16) and ``meta`` atomically."""
        arrays: dict[str, np.ndarray] = {"calibration": self.calibration.astype(np.float32)}
        for name, p in self.points.items():
            arrays[f"{name}/means"] = p.means.astype(np.float32)
            arrays[f"{name}/basis"] = p.basis.astype(np.float16)
            arrays[f"{name}/variances"] = p.variances.astype(np.float32)
            arrays[f"{name}/scalars"] = np.array([p.rest, p.centre, p.spread], np.float64)
        meta = {**self.meta, "weights_sha256": self.weights_sha256, "points": list(self.points)}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        return atomic_write(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> InDomainReference:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        points = {}
        for name in meta["points"]:
            rest, centre, spread = arrays[f"{name}/scalars"].tolist()
            points[name] = _Point(
                arrays[f"{name}/means"].astype(np.float64), arrays[f"{name}/basis"].astype(np.float64),
                arrays[f"{name}/variances"].astype(np.float64), rest, centre, spread,
            )
        return cls(meta["weights_sha256"], points, np.sort(arrays["calibration"].astype(np.float64)), meta)


def calibration_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded half of ``range(n)`` to calibrate on, and the other half to measure on (both sorted)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def _fit_point(
    features: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Class means, the top principal directions of the shared covariance, their variances, the rest's mean."""
    f = np.asarray(features, np.float64)
    means = np.stack([f[labels == c].mean(0) for c in range(classes)])
    centred = f - means[labels]
    cov = centred.T @ centred / len(f)
    dim = cov.shape[0]
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * np.trace(cov) / dim * np.eye(dim)
    values, vectors = np.linalg.eigh(cov)  # ascending
    values, vectors = values[::-1], vectors[:, ::-1]
    k = min(COMPONENTS, dim - 1)
    # The basis ships as float16: round it now, so the calibration below sees what users will.
    basis = vectors[:, :k].astype(np.float16).astype(np.float64)
    return means, basis, values[:k], float(values[k:].mean())


def fit_reference(
    fit: dict[str, np.ndarray],
    fit_labels: np.ndarray,
    calibration: dict[str, np.ndarray],
    *,
    classes: int,
    weights_sha256: str,
    meta: dict[str, Any],
) -> InDomainReference:
    """Fit the per-point Gaussians on ``fit`` (``{point: N x D}`` with labels), then standardise and
    set the threshold on ``calibration`` (other images of the same distribution, unlabelled is fine)."""
    points = {}
    for name in fit:
        means, basis, variances, rest = _fit_point(fit[name], np.asarray(fit_labels), classes)
        raw = _Point(means, basis, variances, rest, 0.0, 1.0).distance(calibration[name])
        points[name] = _Point(means, basis, variances, rest, float(raw.mean()), float(raw.std()))
    reference = InDomainReference(weights_sha256, points, np.zeros(1), meta)
    return InDomainReference(weights_sha256, points, np.sort(reference.scores(calibration)), meta)


def pooled_features(analysis: Analysis, points: tuple[str, ...] = STAGE_ENDS) -> dict[str, np.ndarray]:
    """The spatial mean of each point's output in one analysis, as 1 x D rows (a module's branches in order)."""
    found = {}
    for name in points:
        if name in analysis.modules:
            parts = [b.activation.float().mean((1, 2)) for b in analysis.modules[name].branches.values()]
            found[name] = np.concatenate([p.numpy() for p in parts])[None]
        else:
            found[name] = analysis.stem[name].float().mean((1, 2)).numpy()[None]
    return found


_LOADED: dict[Path, tuple[float, InDomainReference]] = {}


def reference_for(loaded: LoadedModel, path: Path | None = None) -> InDomainReference | None:
    """The calibration statistics of ``loaded``'s weights, or None when none exist for them."""
    path = Path(path or REFERENCE_PATH)
    if not path.is_file():
        return None
    stamp = path.stat().st_mtime
    cached = _LOADED.get(path)
    if cached is None or cached[0] != stamp:
        cached = _LOADED[path] = (stamp, InDomainReference.load(path))
    reference = cached[1]
    return reference if reference.weights_sha256 == loaded.weights_hash else None


def in_domain(loaded: LoadedModel, analysis: Analysis) -> InDomain | None:
    """The in-domain score of the analysed image, or None when the weights have no calibration data."""
    reference = reference_for(loaded)
    if reference is None:
        return None
    return reference.judge(float(reference.scores(pooled_features(analysis, tuple(reference.points)))[0]))
