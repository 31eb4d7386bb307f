"""``gnet distill-aux``: aux heads fitted to the main head on a frozen trunk, as an overlay stacked on its weights.

The short version of the issue's validation runs on the bundled net and the real Fashion-MNIST
(skipped where the dataset is not installed): a few hundred images, no labels, and aux accuracy
well above chance. ImageNet weights are a stand-in file in a temporary torch hub cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps
from torchvision.models import googlenet as tv_googlenet

import gnet
from gnet.cli import main as gnet_main
from gnet.data.fashion_mnist import FASHION_MNIST_DIR
from gnet.errors import CheckpointError, DatasetError
from gnet.heads.distill import DistillConfig, distill_aux, head_accuracy
from gnet.inspect.evaluation import fashion_mnist, fashion_mnist_test, photo_folder
from gnet.storage import ASSETS_DIR
from gnet.weights.loader import imagenet_cache_path
from gnet.weights.overlay import DISTILLED, distilled, save_overlay
from gnet.weights.sources import with_overlay

REAL_DATA = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
PHOTOS = ASSETS_DIR / "samples" / "photos"


@pytest.fixture(scope="module")
def bundled_overlay(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not REAL_DATA:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    torch.set_num_threads(2)
    base = gnet.load("bundled", "cpu")
    train = fashion_mnist(base, "train", limit=300)
    result = distill_aux(base, train, DistillConfig(epochs=10, batch_size=54, held_out=0.1), progress=False)
    path = save_overlay(result.state_dict, result.card, tmp_path_factory.mktemp("aux") / "aux_heads.pt")
    return path, result.card


def test_distilled_heads_on_the_bundled_net_are_well_above_chance(bundled_overlay: tuple[Path, dict]) -> None:
    path, card = bundled_overlay
    stacked = gnet.load(with_overlay("bundled", path), "cpu")
    test = fashion_mnist_test(stacked, limit=300)
    accuracy = head_accuracy(stacked, test)
    assert accuracy["aux1"] > 0.5 and accuracy["aux2"] > 0.5, accuracy  # chance: 10%
    assert card["held_out"]["images"] == 30 and card["labels_used"] is False
    assert set(card["held_out"]["agreement_with_main"]) == {"aux1", "aux2"}


def test_the_overlay_holds_only_the_two_heads_and_its_card(bundled_overlay: tuple[Path, dict]) -> None:
    path, card = bundled_overlay
    saved = torch.load(path, weights_only=True)
    assert saved["format"] == "gnet-aux-overlay" and saved["version"] == 1
    assert {k.split(".")[0] for k in saved["state_dict"]} == {"aux1", "aux2"}
    assert all(v.dtype == torch.float16 for v in saved["state_dict"].values() if v.is_floating_point())
    assert path.stat().st_size < 15e6  # the bundled file holds all of GoogLeNet in 20 MB
    base = gnet.load("bundled", "cpu")
    assert card["base_weights_sha256"] == base.weights_hash and card["method"] == DISTILLED
    assert card["data"]["name"] == "Fashion-MNIST training set (300 images)" and card["data"]["images"] == 300


def test_stacking_replaces_the_aux_heads_and_says_so(bundled_overlay: tuple[Path, dict]) -> None:
    path, _ = bundled_overlay
    base, stacked = gnet.load("bundled", "cpu"), gnet.load(with_overlay("bundled", path), "cpu")
    assert torch.equal(stacked.net.fc.weight, base.net.fc.weight)
    assert torch.equal(stacked.net.inception4a.branch1.conv.weight, base.net.inception4a.branch1.conv.weight)
    assert not torch.equal(stacked.net.aux1.fc2.weight, base.net.aux1.fc2.weight)
    card = stacked.card
    assert distilled(card)["method"] == DISTILLED and distilled(base.card) is None
    assert "aux1" not in card.accuracy and card.accuracy["main"] == base.card.accuracy["main"]
    assert DISTILLED in card.notes[0] and card.untrained_heads == []
    assert stacked.weights_hash != base.weights_hash and stacked.files[-1] == path


def test_an_overlay_for_other_weights_is_one_sentence(
    bundled_overlay: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = bundled_overlay
    with pytest.raises(CheckpointError, match="was distilled on other weights"):
        gnet.load(with_overlay("random", path), "cpu")
    assert gnet_main(["info", "--weights", "random", "--aux-overlay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: aux_heads.pt was distilled on other weights (GoogLeNet on Fashion-MNIST, sha256 ")
    assert err.count("\n") == 1 and err.rstrip().endswith("stack it on the weights it was distilled on.")


def test_a_file_that_is_not_an_overlay(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not an aux-head overlay"):
        gnet.load(with_overlay("bundled", tmp_path / "other.pt"), "cpu")


@pytest.fixture
def fake_imagenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torchvision-layout GoogLeNet (random, seeded) where torch hub keeps the ImageNet file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    net = tv_googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True)
    path = imagenet_cache_path()
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """12 photos in an arbitrary, unlabelled layout: the bundled photos, flipped and cropped."""
    root = tmp_path / "library"
    for i, source in enumerate(sorted(PHOTOS.glob("*.jpg"))):
        with Image.open(source) as im:
            im = im.convert("RGB")
            (root / f"trip{i % 2}").mkdir(parents=True, exist_ok=True)
            im.save(root / f"trip{i % 2}" / f"{source.stem}.jpg")
            ImageOps.mirror(im).save(root / f"{source.stem}_mirror.png")
            im.crop((0, 0, im.width // 2, im.height // 2)).save(root / f"trip{i % 2}" / f"{source.stem}_crop.jpg")
    return root


def test_distill_aux_on_imagenet_weights_from_a_photo_library(
    fake_imagenet: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aux_heads.pt"
    argv = ["distill-aux", "--weights", "imagenet", "--data", str(photos), "--out", str(out), "--epochs", "2",
            "--batch-size", "4", "--held-out", "0.2", "--device", "cpu", "--no-progress"]
    assert gnet_main(argv) == 0
    printed = capsys.readouterr().out
    assert "12 images, unlabelled" in printed and f"--weights imagenet --aux-overlay {out}" in printed
    base = gnet.load("imagenet", "cpu")
    assert base.card.untrained_heads == ["aux1", "aux2"]
    stacked = gnet.load(with_overlay("imagenet", out), "cpu")
    assert stacked.card.untrained_heads == [] and not any("NOT trained" in n for n in stacked.card.notes)
    about = distilled(stacked.card)
    assert about["labels_used"] is False and about["data"]["images"] == 12
    assert about["held_out"]["images"] == 2 and "accuracy" not in about["held_out"]  # no labels: agreement only
    x = stacked.preprocess(PHOTOS / "chelsea.jpg")
    with torch.no_grad():
        assert torch.equal(stacked.net(x).main, base.net(x).main)
        assert not torch.equal(stacked.net(x).aux1, base.net(x).aux1)


def test_labels_need_class_folders_the_weights_know(
    fake_imagenet: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["distill-aux", "--weights", "imagenet", "--data", str(photos), "--labels", "--out", str(tmp_path / "a.pt")]
    assert gnet_main(argv) == 2
    err = capsys.readouterr().err
    assert "classes these weights do not know (trip0, trip1)" in err and err.count("\n") == 1
    assert not (tmp_path / "a.pt").exists()


def test_too_few_images(tiny_loaded, photos: Path) -> None:
    with pytest.raises(DatasetError, match="needs at least 10"):
        distill_aux(tiny_loaded, photo_folder(tiny_loaded, photos, limit=3), progress=False)


def test_an_overlay_with_non_finite_heads_is_refused(tmp_path: Path) -> None:
    from tests.conftest import write_test_overlay

    base = gnet.load("bundled", "cpu")
    path = write_test_overlay(base, tmp_path / "aux_heads.pt")
    saved = torch.load(path, weights_only=True)
    saved["state_dict"]["aux2.fc2.weight"][0, 0] = float("nan")
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match="non-finite values .* in aux2.fc2.weight"):
        gnet.load(with_overlay("bundled", path), "cpu")
