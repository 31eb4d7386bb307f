"""The in-domain score: its distance against a direct Mahalanobis computation, and the shipped calibration
judged on held-out Fashion-MNIST test images (in), the samples (in) and natural photos (out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gnet
from gnet.data.samples import sample_images
from gnet.heads.in_domain import (
    REFERENCE_PATH,
    SHRINKAGE,
    InDomainReference,
    calibration_split,
    fit_reference,
    in_domain,
    pooled_features,
    reference_for,
)
from gnet.heads.logits import compute_logits
from gnet.inspect.evaluation import LabelledImages
from gnet.net.layers import STAGE_ENDS
from tests.conftest import make_loaded
from tests.gnet.heads.test_logits import fashion_mnist_or_skip

HELD_OUT_CHECKED = 300


def _clusters(n: int, rng, shift: float = 0.0):
    labels = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0, 0, 0, 0], [4, 0, 0, 0, 0], [0, 4, 0, 0, 0]])
    scale = np.array([1.0, 0.5, 2.0, 1.0, 0.3])
    return centres[labels] + rng.normal(size=(n, 5)) * scale + shift, labels


def test_distance_is_mahalanobis_to_the_nearest_class():
    rng = np.random.default_rng(0)
    fit, labels = _clusters(4000, rng)
    calib, _ = _clusters(1000, rng)
    ref = fit_reference({"p": fit}, labels, {"p": calib}, classes=3, weights_sha256="x", meta={})
    means = np.stack([fit[labels == c].mean(0) for c in range(3)])
    centred = fit - means[labels]
    cov = centred.T @ centred / len(fit)
    cov = (1 - SHRINKAGE) * cov + SHRINKAGE * np.trace(cov) / 5 * np.eye(5)
    precision = np.linalg.inv(cov)
    x = rng.normal(size=(20, 5)) * 3
    direct = np.sqrt(np.min([np.einsum("nd,de,ne->n", x - m, precision, x - m) for m in means], axis=0))
    # 5 dimensions keep 4 principal directions and the fifth as the "rest": exact up to the float16 basis.
    np.testing.assert_allclose(ref.points["p"].distance(x), direct, rtol=2e-3)
    point = ref.points["p"]
    standardised = (point.distance(calib) - point.centre) / point.spread
    assert standardised.mean() == pytest.approx(0.0, abs=1e-9) and standardised.std() == pytest.approx(1.0)


def test_threshold_percentile_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    fit, labels = _clusters(3000, rng)
    calib, _ = _clusters(2000, rng)
    held, _ = _clusters(2000, rng)
    far, _ = _clusters(200, rng, shift=8.0)
    ref = fit_reference({"p": fit}, labels, {"p": calib}, classes=3, weights_sha256="abc", meta={"calibration": "c"})
    assert np.mean(ref.scores({"p": calib}) <= ref.threshold) == pytest.approx(0.99, abs=1e-3)
    assert np.mean(ref.scores({"p": held}) <= ref.threshold) > 0.97
    assert np.mean(ref.scores({"p": far}) > ref.threshold) > 0.99
    verdict = ref.judge(float(ref.scores({"p": far[:1]})[0]))
    assert not verdict.in_domain and verdict.percentile == 100.0
    assert ref.judge(float(np.median(ref.calibration))).percentile == pytest.approx(50.0, abs=0.1)
    loaded_back = InDomainReference.load(ref.save(tmp_path / "ref.npz"))
    np.testing.assert_allclose(loaded_back.scores({"p": held}), ref.scores({"p": held}), rtol=1e-5, atol=1e-5)
    assert loaded_back.weights_sha256 == "abc" and loaded_back.meta["calibration"] == "c"


def test_calibration_split_is_disjoint_and_seeded():
    a, b = calibration_split(10)
    assert sorted([*a, *b]) == list(range(10)) and not set(a) & set(b)
    assert np.array_equal(calibration_split(10)[0], a)


def test_pooled_features_of_an_analysis_match_the_batched_pass():
    loaded = make_loaded()
    sample = sample_images()[0]
    analysis = gnet.analyze(loaded, sample.path)
    x = analysis.input.unsqueeze(0)
    one = LabelledImages("one", loaded.classes, torch.tensor([0]), {}, lambda idx: x, lambda i: None)
    batched = compute_logits(loaded, one, features=STAGE_ENDS)
    for name, row in pooled_features(analysis).items():
        np.testing.assert_allclose(row, batched[f"features/{name}"], rtol=1e-4, atol=1e-5)


def test_weights_without_calibration_get_no_score():
    loaded = make_loaded()
    assert reference_for(loaded) is None
    assert in_domain(loaded, gnet.analyze(loaded, sample_images()[0].path)) is None


# ---------------------------------------------------------------- the shipped calibration of the bundled net


@pytest.fixture(scope="module")
def bundled():
    loaded = gnet.load("bundled", "cpu")
    reference = reference_for(loaded)
    assert reference is not None, f"{REFERENCE_PATH.name} is missing or for other weights: see scripts/"
    return loaded, reference


def test_held_out_test_images_are_in_domain(bundled):
    loaded, reference = bundled
    data = fashion_mnist_or_skip(loaded)
    _, held_out = calibration_split(len(data))
    chosen = np.random.default_rng(5).choice(held_out, HELD_OUT_CHECKED, replace=False)
    subset = LabelledImages("held out", data.classes, data.labels[chosen], {}, lambda idx: data.inputs(chosen[idx]),
                            data.picture)
    features = compute_logits(loaded, subset, features=tuple(reference.points))
    scores = reference.scores({name: features[f"features/{name}"] for name in reference.points})
    share = float(np.mean(scores <= reference.threshold))
    assert share >= 0.95, f"only {share:.1%} of held-out test images judged in domain"


def test_the_fashion_mnist_samples_are_in_domain(bundled):
    loaded, _ = bundled
    for sample in (s for s in sample_images() if s.slug is not None):
        verdict = in_domain(loaded, gnet.analyze(loaded, sample.path))
        assert verdict is not None and verdict.in_domain, (sample.name, verdict)


def test_photos_are_out_of_domain(bundled):
    loaded, _ = bundled
    skimage_data = pytest.importorskip("skimage.data")
    photos = {s.name: s.path for s in sample_images() if s.slug is None}
    assert len(photos) == 4
    for name, path in photos.items():
        verdict = in_domain(loaded, gnet.analyze(loaded, path))
        assert not verdict.in_domain, (name, verdict)
    others = ("camera", "brick", "clock", "coins", "grass", "gravel", "moon", "page", "text", "hubble_deep_field")
    outside = []
    for name in others:
        array = getattr(skimage_data, name)()
        image = gnet.load_image(_png(array))
        outside.append(not in_domain(loaded, gnet.analyze(loaded, image)).in_domain)
    assert np.mean(outside) >= 0.9, dict(zip(others, outside))


def _png(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()
