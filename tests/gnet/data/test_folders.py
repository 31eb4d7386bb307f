"""Colour image folders: listing and splits, the header check, lazy decoding, seeded augmentation, sharding."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gnet.data.folders import (
    StreamedFolder,
    eval_loader,
    first_unreadable,
    folder_splits,
    list_folder,
    train_loader,
    train_transform,
    unreadable_error,
)
from gnet.data.images import check_image_file, load_image
from gnet.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, colour_transform
from gnet.errors import DatasetError, ImageError
from tests.conftest import write_colour_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colour"), per_class=5)


def test_listing_sorts_classes_and_files(folder: Path) -> None:
    listing = list_folder(folder)
    assert listing.classes == ["blue", "green", "red"] and len(listing) == 15
    assert listing.labels == [0] * 5 + [1] * 5 + [2] * 5
    assert listing.files[0].endswith("blue/000.png") and listing.files == sorted(listing.files)


def test_images_below_the_class_folder_count_and_hidden_ones_do_not(tmp_path: Path) -> None:
    root = write_colour_folder(tmp_path / "f", classes=("a", "b"), per_class=1)
    (root / "a" / "deeper").mkdir()
    Image.new("RGB", (8, 8)).save(root / "a" / "deeper" / "x.jpg")
    Image.new("RGB", (8, 8)).save(root / "a" / ".hidden.png")
    (root / "a" / "notes.txt").write_text("not an image")
    assert len(list_folder(root)) == 3


def test_train_and_val_subfolders(tmp_path: Path) -> None:
    write_colour_folder(tmp_path / "train", per_class=2)
    write_colour_folder(tmp_path / "val", per_class=1)
    splits = folder_splits(tmp_path)
    assert (len(splits.train), len(splits.eval), splits.eval_name) == (6, 3, "val")
    assert folder_splits(tmp_path / "train").eval_name == "train (no val folder)"


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"only": 2}, "one class subfolder ('only') and a classifier needs at least two"),
        ({}, "has no class subfolders"),
        ({"a": 2, "b": 0}, "holds no images"),
    ],
)
def test_unusable_folders_are_one_sentence(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    (tmp_path / "f").mkdir()
    for name, count in layout.items():
        (tmp_path / "f" / name).mkdir()
        for i in range(count):
            Image.new("RGB", (8, 8)).save(tmp_path / "f" / name / f"{i}.png")
    with pytest.raises(DatasetError, match=re.escape(message)) as caught:
        list_folder(tmp_path / "f")
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_val_classes_must_match_train(tmp_path: Path) -> None:
    write_colour_folder(tmp_path / "train", classes=("a", "b"), per_class=1)
    write_colour_folder(tmp_path / "val", classes=("a", "c"), per_class=1)
    with pytest.raises(DatasetError, match="give both the same class subfolders"):
        folder_splits(tmp_path)


def test_header_check_finds_the_first_file_that_is_not_an_image(tmp_path: Path) -> None:
    root = write_colour_folder(tmp_path / "f", classes=("a", "b"), per_class=3)
    (root / "b" / "001.png").write_bytes(b"")  # empty
    (root / "b" / "002.png").write_bytes(b"<html>not an image</html>")
    listing = list_folder(root)
    assert first_unreadable(listing.files, range(len(listing))) == 4
    assert first_unreadable(listing.files, range(0, 4)) is None
    message = str(unreadable_error(listing.files[4]))
    assert "001.png" in message and "empty" in message and message.endswith("fix or remove it to train on this folder.")
    assert check_image_file(listing.files[0]) == (56, 48)


def test_header_check_refuses_too_many_pixels_without_decoding(tmp_path: Path) -> None:
    Image.new("L", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="megapixel limit"):
        check_image_file(tmp_path / "big.png", max_pixels=10_000)


def test_augmentation_depends_on_seed_epoch_and_image_only(folder: Path) -> None:
    ds = StreamedFolder(list_folder(folder), train_transform(32), seed=7)
    a, label, skipped = ds[(3, 1)]
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32 and label == 0 and skipped == ""
    torch.manual_seed(123)  # the global RNG's state does not matter, and is left as it was
    state = torch.get_rng_state()
    assert torch.equal(ds[(3, 1)][0], a)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(ds[(3, 2)][0], a)  # another epoch, another crop
    assert not torch.equal(StreamedFolder(ds.listing, train_transform(32), seed=8)[(3, 1)][0], a)


def test_eval_transform_is_the_cards_preprocessing(tmp_path: Path) -> None:
    """Shorter side resized, centre crop, ImageNet normalization: what gnet.weights.loader builds from the card."""
    wide = np.zeros((40, 80, 3), dtype=np.uint8)
    wide[:, 20:60] = (255, 128, 0)  # an orange centre square between black bands a centre crop removes
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "b").mkdir()
    Image.fromarray(wide).save(tmp_path / "f" / "a" / "wide.png")
    Image.fromarray(wide).save(tmp_path / "f" / "b" / "wide.png")
    ds = StreamedFolder.for_eval(list_folder(tmp_path / "f"), 32)
    x, _, _ = ds[0]
    expected = colour_transform(32, IMAGENET_MEAN, IMAGENET_STD)(load_image(tmp_path / "f" / "a" / "wide.png"))
    assert torch.equal(x, expected)
    rgb = x * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
    assert rgb[0].min() > 0.9 and rgb[2].max() < 0.1  # all orange: the crop kept the centre, nothing squashed


def test_a_corrupt_image_is_replaced_by_the_next_and_named(tmp_path: Path) -> None:
    root = write_colour_folder(tmp_path / "f", classes=("a", "b"), per_class=2)
    good = (root / "a" / "001.png").read_bytes()
    (root / "a" / "001.png").write_bytes(good[: len(good) // 2])  # a valid header, truncated pixel data
    listing = list_folder(root)
    assert first_unreadable(listing.files, range(len(listing))) is None  # the header check cannot see it
    ds = StreamedFolder.for_eval(listing, 32)
    x, label, skipped = ds[1]
    assert "001.png" in skipped and "truncated" in skipped
    assert torch.equal(x, ds[2][0]) and label == 1  # the next image, with its own label


def _batches(ds: StreamedFolder, world: int, epoch: int = 0, skip: int = 0, batch: int = 6) -> list[list[tuple]]:
    """Each global batch as a sorted list of (label, checksum), gathered over ``world`` ranks."""
    per_rank = [
        list(train_loader(ds, batch_size=batch // world, rank=r, world=world, epoch=epoch, skip_batches=skip,
                          shuffle_seed=5, workers=0))
        for r in range(world)
    ]
    return [
        sorted((int(y), round(float(x.sum()), 3)) for r in range(world) for x, y in zip(per_rank[r][b][0], per_rank[r][b][1]))
        for b in range(len(per_rank[0]))
    ]


def test_global_batches_do_not_depend_on_the_number_of_processes(folder: Path) -> None:
    ds = StreamedFolder(list_folder(folder), train_transform(32), seed=0)
    one, two = _batches(ds, 1), _batches(ds, 2)
    assert len(one) == 15 // 6 == len(two)
    assert one == two
    assert _batches(ds, 2, skip=1) == two[1:]  # a resumed epoch skips what it trained on
    assert _batches(ds, 1, epoch=1) != one


def test_eval_shards_cover_every_image_once(folder: Path) -> None:
    ds = StreamedFolder.for_eval(list_folder(folder), 32)
    labels = [y for r in range(2) for _, y, _ in eval_loader(ds, batch_size=4, rank=r, world=2, workers=0)]
    assert sorted(torch.cat(labels).tolist()) == sorted(ds.listing.labels)


def test_workers_load_the_same_images(folder: Path) -> None:
    ds = StreamedFolder(list_folder(folder), train_transform(32), seed=0)
    kwargs = dict(batch_size=3, rank=0, world=1, epoch=0, skip_batches=0, shuffle_seed=1)
    inline = [x for x, _, _ in train_loader(ds, workers=0, **kwargs)]
    workers = [x for x, _, _ in train_loader(ds, workers=2, **kwargs)]
    assert all(torch.equal(a, b) for a, b in zip(inline, workers, strict=True))
