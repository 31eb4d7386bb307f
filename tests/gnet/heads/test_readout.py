"""Linear probes: on synthetic features where the answer is known (separable gives about 100%, random labels
chance), the recording pass against a direct forward, the curve's storage, and the bundled net's shipped curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import gnet
from gnet.data.fashion_mnist import FASHION_MNIST_DIR
from gnet.errors import DatasetError
from gnet.heads import readout
from gnet.heads.readout import HEAD_POINTS, ProbeCurve, fit_probe, linear_probes, probes, record_pooled
from gnet.inspect.evaluation import image_folder
from gnet.inspect.probe import capture, capture_points
from gnet.net.layers import HEADS, INCEPTION_MODULES, STEM_POINTS
from gnet.storage import load_asset
from tests.conftest import make_loaded, modules_with_hooks, use_fake_fashion_mnist, write_colour_folder


def _split(x: np.ndarray, y: np.ndarray, n_fit: int):
    return x[:n_fit], y[:n_fit], x[n_fit:], y[n_fit:]


def test_a_linearly_separable_feature_is_read_almost_perfectly():
    rng = np.random.default_rng(0)
    n, d, classes = 3000, 16, 4
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, d)).astype(np.float16)  # float16, as the recorded features are stored
    # one feature that separates the classes: class c lies in [3c - 1, 3c + 1], a gap of 1 between neighbours
    x[:, 3] = (3.0 * y + rng.uniform(-1, 1, n)).astype(np.float16)
    score = fit_probe("inception4a", *_split(x, y, 2400), classes)
    assert score.accuracy >= 0.99
    assert score.log_loss < 0.2
    assert (score.train_images, score.test_images) == (2400, 600)


def test_random_labels_give_chance_on_held_out_images():
    rng = np.random.default_rng(1)
    n, d, classes = 4000, 32, 10
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    score = fit_probe("conv1", *_split(x, y, 3000), classes)
    assert abs(score.accuracy - 1 / classes) < 0.04  # 1,000 held-out images: chance's spread is about 0.01
    assert score.log_loss > math.log(classes) - 0.05
    assert score.train_accuracy > score.accuracy  # it can still fit noise on the images it saw


def test_the_penalty_shrinks_the_fit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 64)).astype(np.float32)
    y = rng.integers(0, 3, 600)
    loose = fit_probe("p", *_split(x, y, 400), 3, l2=1e-6)
    tight = fit_probe("p", *_split(x, y, 400), 3, l2=1.0)
    assert tight.train_accuracy < loose.train_accuracy


def test_to_dict_is_plain():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    d = fit_probe("inception5b", *_split(x, y, 150), 2).to_dict()
    assert d["point"] == "inception5b" and set(d) >= {"accuracy", "log_loss", "train_accuracy"}
    assert all(isinstance(v, (int, float, str)) for v in d.values())


@pytest.mark.parametrize(
    "train_y, test_y, match",
    [
        (np.zeros(50, int), np.zeros(10, int), "fewer than 2 classes"),
        (np.r_[np.zeros(25, int), np.full(25, 5)], np.zeros(10, int), "outside 0..2"),
        (np.r_[np.zeros(25, int), np.ones(25, int)], np.zeros(0, int), "no labelled images"),
    ],
)
def test_bad_labels_get_one_sentence(train_y, test_y, match):
    x = np.random.default_rng(4).normal(size=(50, 3))
    with pytest.raises(DatasetError, match=match):
        fit_probe("p", x, train_y, x[: len(test_y)], test_y, 3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    # class names the tiny net knows (c0..c9), class k brighter in colour channel k
    return write_colour_folder(tmp_path / "set", classes=("c0", "c1", "c2"), per_class=6, size=(40, 40))


def test_recording_matches_a_direct_forward_and_leaves_no_hook(tiny_loaded, folder, tmp_path):
    data = image_folder(tiny_loaded, folder)
    done: list[int] = []
    features, predicted = record_pooled(tiny_loaded, data, tmp_path, batch_size=7, progress=done.append)
    net = tiny_loaded.net
    assert list(features) == [*STEM_POINTS, *INCEPTION_MODULES] and done == [7, 14, 18]
    x = data.inputs(range(len(data)))
    with torch.no_grad(), capture(net, capture_points(net)) as store:
        out = net(x)
    for point, value in features.items():
        assert value.dtype == np.float16 and value.shape == (18, store[point].shape[1])
        np.testing.assert_allclose(value.astype(np.float32), store[point].mean((2, 3)).numpy(), rtol=5e-3, atol=5e-3)
    for head in HEADS:
        assert (predicted[head] == getattr(out, head).argmax(1).numpy()).all()
    assert modules_with_hooks(net) == [] and not net.training


def test_a_split_keeps_part_of_every_class_aside(tiny_loaded, folder):
    data = image_folder(tiny_loaded, folder)
    fit, held = data.split(0.2, seed=1)
    assert len(fit) + len(held) == len(data) == 18
    assert sorted(held.labels.tolist()) == [0, 1, 2]  # round(6 * 0.2) = 1 image of each class
    assert fit.key != held.key and fit.key["part"].startswith("fit split")
    everything = torch.cat([fit.inputs(range(len(fit))), held.inputs(range(len(held)))])
    assert torch.allclose(everything.sum(0), data.inputs(range(len(data))).sum(0), atol=1e-4)  # the same images, each once
    assert data.split(0.2, seed=1)[1].key == held.key


def test_a_class_with_one_image_cannot_be_split(tiny_loaded, tmp_path):
    root = write_colour_folder(tmp_path / "one", classes=("c0", "c1"), per_class=2, size=(32, 32))
    for extra in sorted((root / "c1").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(DatasetError, match="Class 'c1' .* has 1 image"):
        image_folder(tiny_loaded, root).split()


def test_the_curve_over_a_folder_is_computed_then_cached(tiny_loaded, folder, tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    fractions: list[float] = []
    curve = probes(tiny_loaded, folder, progress=fractions.append)
    assert [s.point for s in curve.scores] == [*STEM_POINTS, *INCEPTION_MODULES]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {s.train_images for s in curve.scores} == {15} and {s.test_images for s in curve.scores} == {3}
    # the set's classes are the weights' own, so each trained head is scored on the same held-out images
    assert set(curve.heads) == set(HEADS) and all(0 <= a <= 1 for a in curve.heads.values())
    assert curve.to_dict()["heads"]["aux2"]["point"] == "inception4d"
    again = probes(tiny_loaded, folder, build=False)
    assert again == curve  # from the disk cache, and the arrays round-trip exactly
    assert probes(make_loaded(seed=1), folder, build=False) is None  # other weights, other key


def test_sets_without_labels_or_with_other_classes_are_refused(tiny_loaded, folder):
    data = image_folder(tiny_loaded, folder)
    fit, held = data.split()
    unlabelled = fit.subset([0, 1], "unlabelled")
    unlabelled.labels[:] = -1
    with pytest.raises(DatasetError, match="without a label"):
        linear_probes(tiny_loaded, unlabelled, held)
    other = fit.subset(range(len(fit)), "renamed")
    other.classes = ["x", "y"]
    with pytest.raises(DatasetError, match="different classes"):
        linear_probes(tiny_loaded, other, held)


def test_without_fashion_mnist_and_without_a_shipped_curve_the_error_says_what_to_install(
    tiny_loaded, tmp_path, monkeypatch
):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="Fashion-MNIST"):
        probes(tiny_loaded)


def test_fashion_mnist_splits_fit_on_train_and_score_on_test(tiny_loaded, tmp_path, monkeypatch):
    use_fake_fashion_mnist(tmp_path, monkeypatch, n_train=20, n_test=10)
    curve = probes(tiny_loaded, progress=None)
    assert curve.fit_data.startswith("Fashion-MNIST training set") and curve.test_data.startswith("Fashion-MNIST test")
    assert curve.heads == {}  # Fashion-MNIST's classes are not the tiny net's c0..c9


def test_the_bundled_curve_is_shipped_for_the_bundled_weights():
    loaded = gnet.load("bundled", "cpu")
    assert load_asset(readout.ASSET, {"weights": loaded.weights_hash}) is not None, "run scripts/build_linear_probes.py"
    curve = probes(loaded, build=False)
    assert curve is not None and curve.scores[0].train_images == 60_000 and curve.scores[0].test_images == 10_000
    # the heads were scored on the same 10,000 test images as the model card's accuracy
    for head in HEADS:
        assert curve.heads[head] == pytest.approx(loaded.card.accuracy[head], abs=0.002)
    # the main head is a linear layer on inception5b's pooled output: a probe there reads about as much
    assert abs(curve.at(HEAD_POINTS["main"]).accuracy - curve.heads["main"]) < 0.015
    assert curve.at("inception5b").accuracy > curve.at("conv1").accuracy + 0.1


@pytest.mark.skipif(not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists(), reason="Fashion-MNIST is not installed")
def test_on_real_images_a_deep_probe_reads_more_than_the_first_layer():
    loaded = gnet.load("bundled", "cpu")
    from gnet.inspect.evaluation import fashion_mnist

    curve = linear_probes(loaded, fashion_mnist(loaded, "train", limit=600), fashion_mnist(loaded, "test", limit=300))
    assert curve.at("inception4d").accuracy > curve.at("conv1").accuracy + 0.05
    assert ProbeCurve.from_arrays(curve.to_arrays()) == curve


def test_a_folder_of_classes_the_weights_do_not_know_gets_probes_but_no_heads(tiny_loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    root = write_colour_folder(tmp_path / "mine", classes=("blue", "green", "red"), per_class=5, size=(40, 40))
    curve = probes(tiny_loaded, root)
    assert curve.classes == ["blue", "green", "red"] and curve.heads == {}
    assert {s.test_images for s in curve.scores} == {3}
    # colour is all there is to these images: the first layer reads it
    assert curve.at("conv1").accuracy == 1.0
