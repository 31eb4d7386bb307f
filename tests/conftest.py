"""Shared fixtures: a small, seeded GoogLeNet wrapped as a LoadedModel, and offline settings."""

from __future__ import annotations

import os

# Tests never try a download, whatever the machine's network.
os.environ["GNET_OFFLINE"] = "1"

import pytest
import torch

from gnet.data.preprocess import GrayscalePreprocess
from gnet.net.model import googlenet
from gnet.weights.card import LoadedModel, ModelCard

TINY_CLASSES = [f"c{i}" for i in range(10)]


def make_loaded(seed: int = 0, input_size: int = 64) -> LoadedModel:
    """A 10-class GoogLeNet at 64 px with a gray transform: fast enough for any test."""
    card = ModelCard(
        name="tiny test net",
        source="test",
        classes=list(TINY_CLASSES),  # a copy: a test may change its own card
        input_size=input_size,
        normalization={"mean": [0.5] * 3, "std": [0.25] * 3},
        heads_trained={"main": True, "aux1": True, "aux2": False},
    )
    # Kaiming init: with torchvision's N(0, 0.01) the untrained logits are ~1e-12 and every head is uniform.
    net = googlenet(num_classes=10, init="kaiming", seed=seed).eval()
    return LoadedModel(
        net=net,
        card=card,
        transform=GrayscalePreprocess(input_size, 0.5, 0.25, invert=False),
        device=torch.device("cpu"),
        source="test",
    )


@pytest.fixture
def tiny_loaded() -> LoadedModel:
    return make_loaded()


# ---------------------------------------------------------------------------------------------
# A fake Fashion-MNIST, shared by the data, training and dashboard tests.

import gzip  # noqa: E402  (appended section)
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def write_idx(path: Path, array: np.ndarray, magic: int) -> Path:
    """Write ``array`` (as uint8) as a gzipped IDX file with the given magic number (2051 images, 2049 labels)."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def write_fake_fashion_mnist(root: Path, n_train: int = 16, n_test: int = 8, seed: int = 0) -> Path:
    """Random 28 x 28 images in Fashion-MNIST's file layout under ``root`` (labels cycling 0..9).

    Point ``GNET_FASHION_MNIST_DIR`` at the returned ``root`` to train or evaluate on it.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, 2049)
    return root


def use_fake_fashion_mnist(tmp_path: Path, monkeypatch, *, n_train: int = 2, n_test: int = 8) -> Path:
    """:func:`write_fake_fashion_mnist` under ``tmp_path``, made the dataset gnet reads, with a fresh disk cache."""
    root = write_fake_fashion_mnist(tmp_path / "fm", n_train=n_train, n_test=n_test)
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(root))
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    return root


def modules_with_hooks(net: torch.nn.Module) -> list[str]:
    """Names of ``net``'s modules that still carry a forward/backward (pre-)hook."""
    return [
        name
        for name, m in net.named_modules()
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
    ]


def sample_with_an_empty_grad_cam(loaded: LoadedModel, module: str = "inception4e"):
    """The first bundled sample whose Grad-CAM of main's top class on ``module`` is empty for some branch,
    and for each branch whether its map finds evidence; pytest skips where no sample has one.

    On the bundled net the first is fmnist_bag_18, its 3x3 and 5x5 maps empty (checked).
    """
    from gnet.data.samples import sample_images
    from gnet.inspect.attributions import grad_cam
    from gnet.inspect.probe import analyze
    from gnet.net.layers import BRANCHES

    for sample in sample_images():
        x = loaded.preprocess(sample.path)
        target = analyze(loaded, x).heads["main"].top[0].index
        found = {b: bool(grad_cam(loaded.net, x, target, module=module, branch=b).max() > 0) for b in BRANCHES}
        if not all(found.values()):
            return sample, found
    pytest.skip(f"no sample leaves a Grad-CAM of main on {module} empty with {loaded.card.name}")


# ---------------------------------------------------------------------------------------------
# A small colour image folder (root/<class>/<image>), shared by the folder, training and distributed tests.

from PIL import Image as _Image  # noqa: E402


def write_colour_folder(
    root: Path, classes: tuple[str, ...] = ("blue", "green", "red"), per_class: int = 16, size: tuple[int, int] = (56, 48),
    seed: int = 0,
) -> Path:
    """``per_class`` noisy RGB PNGs per class, class k brighter in channel k (so a net can tell them apart)."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (size[1], size[0], 3)).astype(np.uint8)
            pixels[..., k % 3] += 150
            _Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def write_test_overlay(base: LoadedModel, path: Path, seed: int = 3) -> Path:
    """An aux-head overlay for ``base`` holding seeded, untrained heads: for tests of stacking and of the app."""
    from gnet.weights.overlay import DISTILLED, save_overlay

    config = base.net.config
    heads = googlenet(num_classes=config.num_classes, batch_norm=config.batch_norm, seed=seed).state_dict()
    card = {
        "base_weights_sha256": base.weights_hash, "base_name": base.card.name, "method": DISTILLED,
        "temperature": 2.0, "labels_used": False, "data": {"name": "test images", "images": 12},
    }
    return save_overlay(heads, card, path)
