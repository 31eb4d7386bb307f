"""gnet.inspect.evaluation: labelled sets preprocessed as the weights expect, and a named error for every bad folder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from gnet.data.fashion_mnist import FASHION_MNIST_CLASSES, GrayImageDataset, load_fashion_mnist
from gnet.errors import DatasetError
from gnet.inspect.evaluation import fashion_mnist_test, image_folder, sample_set
from tests.conftest import TINY_CLASSES, make_loaded, write_fake_fashion_mnist


@pytest.fixture
def fake_fmnist(tmp_path, monkeypatch):
    root = write_fake_fashion_mnist(tmp_path / "fm", n_train=4, n_test=12)
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(root))
    return root


def test_fashion_mnist_takes_the_training_path_for_gray_weights(fake_fmnist):
    loaded = make_loaded()
    data = fashion_mnist_test(loaded, limit=10)
    assert len(data) == 10 and data.classes == list(FASHION_MNIST_CLASSES) and data.labelled
    images, labels = load_fashion_mnist("test")
    expected = GrayImageDataset(images[:10], labels[:10], input_size=64, train=False, mean=0.5, std=0.25)
    batches = list(data.batches(4))
    assert [len(i) for _, _, i in batches] == [4, 4, 2]
    x = torch.cat([b[0] for b in batches])
    torch.testing.assert_close(x, expected.batch(torch.arange(10))[0], rtol=0, atol=0)
    assert torch.equal(torch.cat([b[1] for b in batches]), labels[:10])
    assert data.picture(3).size == (28, 28) and data.picture(3).mode == "RGB"
    assert data.key["data"] == "fashion-mnist-test" and data.key["n"] == 10


def test_fashion_mnist_missing_is_a_dataset_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="Fashion-MNIST not found"):
        fashion_mnist_test(make_loaded())


def _folder(root, classes=("c1", "c3"), n=3):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (40, 30), (20 * i, 100, 200)).save(root / c / f"{i}.png")
    return root


def test_image_folder_labels_follow_the_weights_classes(tmp_path):
    loaded = make_loaded()
    data = image_folder(loaded, _folder(tmp_path / "imgs"))
    assert len(data) == 6 and data.classes == TINY_CLASSES
    assert data.labels.tolist() == [1, 1, 1, 3, 3, 3]
    x, y, _ = next(data.batches(8))
    assert x.shape == (6, 3, 64, 64)
    torch.testing.assert_close(x[0], loaded.transform(data.picture(0)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "has no class subfolders"),
        (lambda root: _folder(root, classes=("c1", "zebra")), "classes these weights do not know (zebra)"),
        (lambda root: (root / "c1").mkdir() or root, "holds no images"),
    ],
)
def test_bad_folders_are_named(tmp_path, make, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        image_folder(make_loaded(), make(tmp_path))


def test_a_broken_image_is_named_when_read(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "c1" / "9.png").write_bytes(b"not a png")
    data = image_folder(make_loaded(), root)
    with pytest.raises(DatasetError, match=r"9\.png"):
        list(data.batches(16))


def test_samples_are_labelled_where_the_weights_know_the_class():
    loaded = make_loaded()
    loaded.card.classes[:] = list(FASHION_MNIST_CLASSES)  # a 10-class card with Fashion-MNIST's names
    data = sample_set(loaded)
    known = (data.labels >= 0).sum().item()
    assert known == 20 and len(data) == 24  # 20 Fashion-MNIST samples; the 4 photos have no label
    assert not data.labelled


def test_weights_hash_is_the_file_hash_or_the_tensors(tmp_path):
    import gnet

    bundled = gnet.load("bundled", "cpu")
    assert bundled.weights_hash == hashlib.sha256(bundled.files[0].read_bytes()).hexdigest()
    a, b = make_loaded(seed=0), make_loaded(seed=1)
    assert a.weights_hash != b.weights_hash and a.weights_hash == make_loaded(seed=0).weights_hash
    assert len(np.unique([a.weights_hash, b.weights_hash, bundled.weights_hash])) == 3
