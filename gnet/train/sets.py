"""What each training step and each evaluation batch reads, per process: Fashion-MNIST or a colour folder.

:mod:`gnet.train.loop` asks both sources the same things: the class names, the number of training
images, the model-card facts about their preprocessing, this process's share of the global
batches of an epoch from a given step on, and this process's share of the evaluation set.

- :class:`FashionMNIST` keeps the grayscale in-memory path the bundled model was trained on:
  whole batches are augmented at once from a generator seeded per step (one global batch,
  of which each process keeps every ``world``-th image, so any number of processes sees the
  same images with the same augmentation).
- :class:`ColourFolder` streams RGB images from disk through ``DataLoader`` workers
  (:mod:`gnet.data.folders`), with ImageNet normalization.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from tqdm import tqdm

from ..data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    GrayImageDataset,
    load_fashion_mnist,
)
from ..data.folders import (
    FolderListing,
    StreamedFolder,
    eval_loader,
    first_unreadable,
    folder_splits,
    train_loader,
    train_transform,
    unreadable_error,
)
from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD, resize_for
from ..guard import derive_seed
from .distributed import Dist

__all__ = ["Batch", "ColourFolder", "FashionMNIST", "eval_batches", "training_data"]

Batch = tuple[Tensor, Tensor, list[str]]  # inputs, labels, per image "" or the sentence about a skipped file


def _generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


class FashionMNIST:
    """Fashion-MNIST from its IDX files, held in memory (60,000 28x28 images are 47 MB)."""

    colour = "gray"

    def __init__(self, *, input_size: int, seed: int, eval_limit: int | None) -> None:
        train_x, train_y = load_fashion_mnist("train")
        test_x, test_y = load_fashion_mnist("test")
        if eval_limit is not None:
            test_x, test_y = test_x[:eval_limit], test_y[:eval_limit]
        self.seed = seed
        self.train_set = GrayImageDataset(train_x, train_y, input_size=input_size, train=True)
        self.eval_set = GrayImageDataset(test_x, test_y, input_size=input_size, train=False)
        self.classes = list(FASHION_MNIST_CLASSES)
        self.n_train = len(self.train_set)
        self.eval_split = f"test ({len(self.eval_set):,} images)"

    def check(self, d: Dist, progress: bool) -> None:
        """Nothing to check: the IDX reader has validated the files."""

    def card(self, input_size: int) -> dict:
        invert = (
            "auto: photos whose border is lighter than their centre are inverted, "
            "because Fashion-MNIST garments are light on a dark background"
        )
        return {
            "dataset": "Fashion-MNIST (Zalando, MIT licence), Debian package dataset-fashion-mnist",
            "preprocessing": {
                "colour": "gray", "grayscale": True, "resize": input_size, "mean": [FASHION_MNIST_MEAN] * 3,
                "std": [FASHION_MNIST_STD] * 3, "channels": "gray repeated to 3", "invert": invert,
            },
        }

    def batches(self, epoch: int, start: int, steps_per_epoch: int, global_batch: int, d: Dist) -> Iterator[Batch]:
        """Global batches ``start ..`` of ``epoch``; this process keeps images ``rank, rank + world, ...`` of each."""
        order = torch.randperm(self.n_train, generator=_generator(self.seed, "shuffle", epoch))
        for b in range(start, steps_per_epoch):
            indices = order[b * global_batch : (b + 1) * global_batch]
            step = epoch * steps_per_epoch + b
            x, y = self.train_set.batch(indices, generator=_generator(self.seed, "augment", step))
            if d.world > 1:
                x, y = x[d.rank :: d.world], y[d.rank :: d.world]
            yield x, y, [""] * len(y)

    def eval_batches(self, d: Dist, batch_size: int, workers: int) -> Iterator[Batch]:
        return eval_batches(self.eval_set, d, batch_size, workers)


class ColourFolder:
    """A colour image folder (``root/<class>/...``, or ``train/`` + ``val/``), streamed from disk."""

    colour = "rgb"

    def __init__(self, root: str, *, input_size: int, seed: int, eval_limit: int | None, workers: int) -> None:
        splits = folder_splits(root)
        held_out = splits.eval
        if eval_limit is not None:
            held_out = FolderListing(held_out.root, held_out.classes, held_out.files[:eval_limit], held_out.labels[:eval_limit])
        self.root, self.seed, self.workers = root, seed, workers
        self.listings = (splits.train, held_out)
        self.train_set = StreamedFolder(splits.train, train_transform(input_size), seed=seed)
        self.eval_set = StreamedFolder.for_eval(held_out, input_size)
        self.classes = list(splits.train.classes)
        self.n_train = len(splits.train)
        self.eval_split = f"{splits.eval_name} ({len(held_out):,} images)"

    def check(self, d: Dist, progress: bool) -> None:
        """Every image's header, each process checking its share; the first bad file is a DatasetError on every rank."""
        train, held_out = self.listings
        for listing in (train,) if held_out.files == train.files else (train, held_out):
            mine = range(d.rank, len(listing), d.world)
            with tqdm(
                total=len(mine), disable=not (progress and d.is_main) or len(listing) < 5000, unit="image",
                desc="checking images", leave=False,
            ) as bar:
                bad = first_unreadable(listing.files, mine, progress=bar.update)
            first = d.min_int(len(listing) if bad is None else bad)
            if first < len(listing):
                raise unreadable_error(listing.files[first])

    def card(self, input_size: int) -> dict:
        return {
            "dataset": f"image folder {self.root} ({self.n_train:,} training images)",
            "preprocessing": {
                "colour": "rgb", "grayscale": False, "resize": resize_for(input_size), "crop": input_size,
                "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "channels": "RGB", "invert": "none",
            },
        }

    def batches(self, epoch: int, start: int, steps_per_epoch: int, global_batch: int, d: Dist) -> Iterator[Batch]:
        loader = train_loader(
            self.train_set, batch_size=global_batch // d.world, rank=d.rank, world=d.world, epoch=epoch,
            skip_batches=start, shuffle_seed=derive_seed(self.seed, "shuffle") % 2**31, workers=self.workers,
            pin_memory=torch.cuda.is_available(),
        )
        yield from loader

    def eval_batches(self, d: Dist, batch_size: int, workers: int) -> Iterator[Batch]:
        return eval_batches(self.eval_set, d, batch_size, workers)


def eval_batches(
    dataset: GrayImageDataset | StreamedFolder, d: Dist, batch_size: int, workers: int = 0
) -> Iterator[Batch]:
    """This process's share of ``dataset`` (every ``world``-th image) in batches; nothing repeated across ranks."""
    if isinstance(dataset, GrayImageDataset):
        mine = torch.arange(d.rank, len(dataset), d.world)
        for start in range(0, len(mine), batch_size):
            x, y = dataset.batch(mine[start : start + batch_size])
            yield x, y, [""] * len(y)
        return
    yield from eval_loader(dataset, batch_size=batch_size, rank=d.rank, world=d.world, workers=workers)


def training_data(
    data: str, *, input_size: int, seed: int, eval_limit: int | None, workers: int
) -> FashionMNIST | ColourFolder:
    """The source ``data`` names: ``"fashion-mnist"`` or a folder path."""
    if data == "fashion-mnist":
        return FashionMNIST(input_size=input_size, seed=seed, eval_limit=eval_limit)
    return ColourFolder(data, input_size=input_size, seed=seed, eval_limit=eval_limit, workers=workers)

