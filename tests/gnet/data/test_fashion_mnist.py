"""Fashion-MNIST IDX reading and the batch preprocessing (colour folders: test_folders.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from gnet.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    GrayImageDataset,
    fashion_mnist_dir,
    load_fashion_mnist,
    read_idx,
)
from gnet.errors import DatasetError
from tests.conftest import write_fake_fashion_mnist, write_idx

REAL_DATA = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()


def test_read_idx_roundtrip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "x.gz", images, 2051), 2051), images)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "y.gz", labels, 2049), 2049), labels)


def test_read_idx_rejects_corruption(tmp_path: Path) -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    wrong_magic = write_idx(tmp_path / "magic.gz", images, 2049)  # a labels magic on an images file
    with pytest.raises(DatasetError, match="magic number 2051"):
        read_idx(wrong_magic, 2051)
    truncated = tmp_path / "short.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(write_idx(truncated, images, 2051).read_bytes())[:-5]))
    with pytest.raises(DatasetError, match="header promises"):
        read_idx(truncated, 2051)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"not a gzip file at all")
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(not_gzip, 2051)


def test_missing_dataset_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    assert fashion_mnist_dir() == tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train")


def test_load_fake_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(write_fake_fashion_mnist(tmp_path)))
    images, labels = load_fashion_mnist("test")
    assert images.shape == (8, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


def test_batch_preprocessing_eval() -> None:
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[1] = 255
    ds = GrayImageDataset(images, torch.tensor([0, 1, 2]), input_size=32, train=False)
    x, y = ds.batch(torch.arange(3))
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x[:, 0], x[:, 2])  # gray repeated to 3 channels
    assert x[0].flatten()[0].item() == pytest.approx(-FASHION_MNIST_MEAN / FASHION_MNIST_STD)
    assert x[1].flatten()[0].item() == pytest.approx((1 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD)
    single, label = ds[1]
    assert torch.equal(single, x[1]) and label == 1


def test_augmentation_is_seeded_and_small() -> None:
    images = torch.zeros(64, 28, 28, dtype=torch.uint8)
    images[:, 14, 10] = 255  # one bright pixel, left of centre
    ds = GrayImageDataset(images, torch.zeros(64, dtype=torch.int64), input_size=28, train=True)
    a, _ = ds.batch(torch.arange(64), torch.Generator().manual_seed(1))
    b, _ = ds.batch(torch.arange(64), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    brightest = a[:, 0].flatten(1).argmax(1)
    rows, cols = brightest // 28, brightest % 28
    assert ((rows - 14).abs() <= 2).all()
    # Either 10 +- 2 (not flipped) or 17 +- 2 (flipped: 27 - 10), and both happen in 64 draws.
    flipped = (cols - 17).abs() <= 2
    assert (flipped | ((cols - 10).abs() <= 2)).all() and 0 < int(flipped.sum()) < 64


@pytest.mark.skipif(not REAL_DATA, reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_and_its_statistics() -> None:
    images, labels = load_fashion_mnist("train", FASHION_MNIST_DIR)
    assert images.shape == (60000, 28, 28) and torch.bincount(labels).tolist() == [6000] * 10
    pixels = images.numpy().astype(np.float32) / 255
    assert pixels.mean(dtype=np.float64) == pytest.approx(FASHION_MNIST_MEAN, abs=1e-4)
    assert pixels.std(dtype=np.float64) == pytest.approx(FASHION_MNIST_STD, abs=1e-4)
    test_images, test_labels = load_fashion_mnist("test", FASHION_MNIST_DIR)
    assert test_images.shape == (10000, 28, 28) and len(test_labels) == 10000
    assert len(FASHION_MNIST_CLASSES) == 10
