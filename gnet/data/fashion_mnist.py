"""Fashion-MNIST: read from its IDX files, held in memory, and turned into the network's input in batches.

The images end up as one uint8 tensor plus int64 labels (47 MB for the 60,000 training
images), and :class:`GrayImageDataset` turns them into the network's input: resize to
``input_size``, optional train-time augmentation (horizontal flip, small translation),
normalization, gray repeated to 3 channels. It works on whole batches because per-image
transforms dominate the cost of small CPU training runs. Colour image folders, too large to
hold, are streamed from disk instead (:mod:`gnet.data.folders`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..errors import DatasetError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "GrayImageDataset",
    "fashion_mnist_dir",
    "load_fashion_mnist",
    "read_idx",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Computed once from the 60,000 training images scaled to [0, 1] (pixel mean and std over
# all pixels); tests/gnet/data/test_fashion_mnist.py recomputes them when the dataset is installed.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530

_IDX_MAGIC = {2051: 3, 2049: 1}  # magic -> number of dimensions (uint8 images / uint8 labels)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_MAX_SHIFT_28 = 2  # translation augmentation, in pixels at Fashion-MNIST's native 28x28


def fashion_mnist_dir() -> Path:
    """Where Fashion-MNIST is read from: ``$GNET_FASHION_MNIST_DIR`` or :data:`FASHION_MNIST_DIR`."""
    override = os.environ.get("GNET_FASHION_MNIST_DIR")
    return Path(override) if override else FASHION_MNIST_DIR


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes whose header must carry ``magic`` (2051 or 2049).

    Format (LeCun's MNIST page): a big-endian int32 magic number, one big-endian int32
    per dimension, then the values in row-major order.
    """
    ndim = _IDX_MAGIC[magic]
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path} is not a readable gzip file ({e}); reinstall the dataset.") from e
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DatasetError(f"{path} is not an IDX file with magic number {magic}; reinstall the dataset.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DatasetError(
            f"{path} holds {len(raw) - header} bytes of data but its header promises {shape}; reinstall the dataset."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(split: Literal["train", "test"], root: Path | str | None = None) -> tuple[Tensor, Tensor]:
    """Fashion-MNIST ``split`` as (uint8 images N x 28 x 28, int64 labels N)."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else fashion_mnist_dir()
    image_file, label_file = (root / name for name in _FILES[split])
    if not image_file.is_file() or not label_file.is_file():
        raise DatasetError(
            f"Fashion-MNIST not found in {root}: install it with `apt-get install dataset-fashion-mnist` "
            "(or set GNET_FASHION_MNIST_DIR)."
        )
    images = read_idx(image_file, 2051)
    labels = read_idx(label_file, 2049)
    if len(images) != len(labels) or images.shape[1:] != (28, 28) or labels.max(initial=0) >= 10:
        raise DatasetError(f"{root} holds inconsistent Fashion-MNIST {split} files; reinstall the dataset.")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class GrayImageDataset(Dataset):
    """Grayscale uint8 images -> normalized 3 x S x S float tensors, augmented when ``train``.

    Augmentation, as is usual for Fashion-MNIST: random horizontal flip and a random
    translation of up to 2 pixels at 28x28 scale (scaled with ``input_size``), the
    exposed border filled with black, the garments' background.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, *, input_size: int, train: bool,
        mean: float = FASHION_MNIST_MEAN, std: float = FASHION_MNIST_STD,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 3 or len(images) != len(labels):
            raise ValueError("images must be uint8 N x H x W with one label each")
        self.images = images
        self.labels = labels
        self.input_size = input_size
        self.train = train
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x, y = self.batch(torch.tensor([index]))
        return x[0], int(y[0])

    def batch(self, indices: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Inputs (B x 3 x S x S, float32, channels_last) and labels for ``indices``.

        ``generator`` drives the augmentation, so a seeded one makes it reproducible.
        """
        x = self.images[indices].unsqueeze(1)  # B x 1 x H x W, uint8
        x = TF.resize(x, [self.input_size, self.input_size], antialias=True)
        x = TF.to_dtype(x, torch.float32, scale=True)  # B x 1 x S x S in [0, 1]
        if self.train:
            x = _augment(x, generator)
        x = TF.normalize(x, [self.mean], [self.std])
        x = x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)  # B x 3 x S x S
        return x, self.labels[indices]


def _augment(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Per-image random horizontal flip and integer translation of a B x 1 x S x S batch."""
    n, _, size, _ = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    shift = max(1, round(_MAX_SHIFT_28 * size / 28))
    dy, dx = torch.randint(-shift, shift + 1, (2, n), generator=generator)
    padded = torch.nn.functional.pad(x[:, 0], (shift, shift, shift, shift))  # B x (S+2s) x (S+2s), zeros
    grid = torch.arange(size)
    rows = (grid[None, :] + shift - dy[:, None])[:, :, None]  # B x S x 1
    cols = (grid[None, :] + shift - dx[:, None])[:, None, :]  # B x 1 x S
    return padded[torch.arange(n)[:, None, None], rows, cols].unsqueeze(1)
