"""Colour image folders for training, streamed from disk: listing, checking, transforms, loaders.

A folder is ``root/<class>/<image>`` (images may sit deeper below their class folder), or
``root/train/<class>/...`` plus ``root/val/`` (or ``root/test/``) to evaluate on. Nothing holds
the images: a :class:`FolderListing` is paths and labels, and :class:`StreamedFolder` decodes
each image with :func:`gnet.data.images.load_image` when a ``DataLoader`` worker asks for it, so
memory stays flat whatever the folder's size.

Two kinds of bad file are told apart:

- a file that is not an image at all (empty, another format, too large, unreadable) is found
  before training starts by :func:`first_unreadable`, which reads headers only; the run then
  stops with one sentence naming the file, having written nothing;
- an image whose pixel data turns out corrupt past a valid header is skipped when it is
  decoded: the next image of the folder takes its place (so every process keeps the same
  batch size, which data-parallel training needs) and its name is reported.

Randomness: a training item is asked for as ``(index, epoch)``, and its random crop and flip
are drawn from a seed derived from ``(seed, epoch, index)``. The augmentation of an image
therefore does not depend on which process or worker loads it, on the batch it falls in,
or on a resume, which is what lets two processes reproduce one (tests/gnet/train/test_distributed.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torchvision.transforms import v2

from ..errors import DatasetError, ImageError
from ..guard import derive_seed, seeded
from .images import SUPPORTED_EXTENSIONS, check_image_file, load_image
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, colour_transform

__all__ = [
    "EVAL_FOLDERS",
    "FolderListing",
    "FolderSplits",
    "StreamedFolder",
    "eval_loader",
    "first_unreadable",
    "folder_splits",
    "list_folder",
    "train_loader",
    "train_transform",
    "unreadable_error",
]

EVAL_FOLDERS = ("val", "test")  # held-out subfolders next to train/, in order of preference
_CHECK_THREADS = 8  # header reads wait on the disk, not the CPU: threads overlap them


@dataclass(frozen=True)
class FolderListing:
    """The images of one folder tree: paths, their class index, and the class names (sorted)."""

    root: Path
    classes: list[str]
    files: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class FolderSplits:
    """What a run trains on and evaluates on; ``eval_name`` says which split that is."""

    train: FolderListing
    eval: FolderListing
    eval_name: str  # "val", "test", or "train (no val folder)"


def list_folder(root: Path | str) -> FolderListing:
    """List ``root/<class>/...`` images (extensions in :data:`gnet.data.images.SUPPORTED_EXTENSIONS`).

    Raises :class:`DatasetError` for a missing folder, no class subfolders, a single class
    (a classifier needs two) or a class folder without images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder {str(root)!r} does not exist; give a folder with one subfolder per class.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{str(root)!r} has no class subfolders: put the images in {root}/<class name>/<image>.")
    if len(classes) == 1:
        raise DatasetError(
            f"{str(root)!r} has one class subfolder ({classes[0]!r}) and a classifier needs at least two: "
            "add one subfolder per class."
        )
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(_images_below(root / name))
        if not found:
            raise DatasetError(
                f"class folder {str(root / name)!r} holds no images ({', '.join(SUPPORTED_EXTENSIONS)}): "
                "add some or remove the folder."
            )
        files += found
        labels += [label] * len(found)
    return FolderListing(root, classes, files, labels)


def _images_below(folder: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.rsplit(".", 1)[-1].lower() in SUPPORTED_EXTENSIONS:
                yield os.path.join(dirpath, name)


def folder_splits(root: Path | str) -> FolderSplits:
    """``root/train`` + ``root/val`` (or ``root/test``) when present, else ``root`` for both."""
    root = Path(root).expanduser()
    if not (root / "train").is_dir():
        listing = list_folder(root)
        # No held-out folder: the accuracy then only says how well the net fits its data.
        return FolderSplits(listing, listing, "train (no val folder)")
    train = list_folder(root / "train")
    for name in EVAL_FOLDERS:
        if (root / name).is_dir():
            held_out = list_folder(root / name)
            if held_out.classes != train.classes:
                raise DatasetError(
                    f"{str(root / name)!r} has classes {held_out.classes[:5]} but {str(root / 'train')!r} has "
                    f"{train.classes[:5]}: give both the same class subfolders."
                )
            return FolderSplits(train, held_out, name)
    return FolderSplits(train, train, "train (no val folder)")


def first_unreadable(files: Sequence[str], indices: Iterable[int], *, progress: Callable[[int], None] | None = None) -> int | None:
    """The lowest of ``indices`` whose file is not an image :func:`load_image` would accept, by header; or None."""
    indices = list(indices)
    bad: int | None = None
    with ThreadPoolExecutor(_CHECK_THREADS) as pool:
        for start in range(0, len(indices), 1024):
            chunk = indices[start : start + 1024]
            for index, ok in zip(chunk, pool.map(lambda i: _readable(files[i]), chunk)):
                if not ok and (bad is None or index < bad):
                    bad = index
            if progress is not None:
                progress(len(chunk))
            if bad is not None:
                return bad
    return bad


def _readable(path: str) -> bool:
    try:
        check_image_file(path)
    except ImageError:
        return False
    return True


def unreadable_error(path: str) -> DatasetError:
    """The one sentence for a training image that cannot be read, naming it."""
    try:
        check_image_file(path)
        load_image(path)
    except ImageError as e:
        return DatasetError(f"{str(e).rstrip('.')}; fix or remove it to train on this folder.")
    return DatasetError(f"{path!r} could not be read; fix or remove it to train on this folder.")


def train_transform(input_size: int) -> v2.Compose:
    """Random resized crop (torchvision's default scale 0.08-1 and ratio 3/4-4/3) and flip, ImageNet normalization."""
    return v2.Compose([
        v2.PILToTensor(),
        v2.RandomResizedCrop(input_size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
    ])


class StreamedFolder(Dataset):
    """A :class:`FolderListing` as ``(input, label, skipped)`` items, decoded on demand.

    Items are asked for as ``(index, epoch)`` (a bare index means epoch 0). With ``seed``
    set, the transform's randomness is drawn from ``derive_seed(seed, "augment", epoch, index)``.
    ``skipped`` is "" or the sentence about the corrupt image that the next one replaced.
    """

    def __init__(self, listing: FolderListing, transform: Callable, *, seed: int | None = None) -> None:
        self.listing = listing
        self.transform = transform
        self.seed = seed

    @classmethod
    def for_eval(cls, listing: FolderListing, input_size: int) -> StreamedFolder:
        """Resize, centre crop, ImageNet normalization: the preprocessing the trained net's card records."""
        return cls(listing, colour_transform(input_size, IMAGENET_MEAN, IMAGENET_STD))

    def __len__(self) -> int:
        return len(self.listing)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int, str]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        skipped = ""
        for attempt in range(min(len(self), 100)):
            i = (index + attempt) % len(self)
            try:
                image = load_image(self.listing.files[i])
            except ImageError as e:
                skipped = skipped or str(e)
                continue
            if self.seed is None:
                x = self.transform(image)
            else:
                with seeded(derive_seed(self.seed, "augment", epoch, index)):
                    x = self.transform(image)
            return x, self.listing.labels[i], skipped
        raise DatasetError(
            f"100 images in a row from {self.listing.files[index]!r} on could not be decoded; check the folder."
        )


class _EpochItems(Sampler):
    """A DistributedSampler's indices for one epoch as ``(index, epoch)`` items, after skipping ``skip`` of them.

    Written here because DistributedSampler has no start offset: a resumed epoch must skip what
    it already trained on without decoding it, and the items must carry the epoch to the workers.
    """

    def __init__(self, sampler: DistributedSampler, epoch: int, skip: int) -> None:
        self.sampler, self.epoch, self.skip = sampler, epoch, skip
        sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) - self.skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for n, index in enumerate(self.sampler):
            if n >= self.skip:
                yield index, self.epoch


def _collate(items: list[tuple[Tensor, int, str]]) -> tuple[Tensor, Tensor, list[str]]:
    x = torch.stack([item[0] for item in items])
    y = torch.tensor([item[1] for item in items], dtype=torch.int64)
    return x, y, [item[2] for item in items]


def train_loader(
    dataset: StreamedFolder, *, batch_size: int, rank: int, world: int, epoch: int, skip_batches: int,
    shuffle_seed: int, workers: int, pin_memory: bool = False,
) -> DataLoader:
    """This process's batches of one epoch: a DistributedSampler shard, the last partial batch dropped.

    With a global batch of ``batch_size x world``, global step ``b`` trains on positions
    ``b x global .. (b + 1) x global`` of the epoch's permutation whatever ``world`` is
    (DistributedSampler hands out the permutation strided across ranks).
    """
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=shuffle_seed, drop_last=True
    )
    return DataLoader(
        dataset, batch_size=batch_size, sampler=_EpochItems(sampler, epoch, skip_batches * batch_size),
        drop_last=True, num_workers=workers, collate_fn=_collate, pin_memory=pin_memory,
    )


def eval_loader(dataset: Dataset, *, batch_size: int, rank: int, world: int, workers: int) -> DataLoader:
    """Every ``world``-th image from ``rank`` on, in order, nothing padded or repeated (counts are summed over ranks)."""
    return DataLoader(
        dataset, batch_size=batch_size, sampler=list(range(rank, len(dataset), world)),
        num_workers=workers, collate_fn=_collate,
    )
