"""Shared fixtures: a small, seeded GoogLeNet wrapped as a LoadedModel, and offline settings."""

from __future__ import annotations

import os

# Tests never try a download, whatever the machine's network.
os.environ["GNET_OFFLINE"] = "1"

import pytest
import torch

from gnet.model import googlenet
from gnet.preprocess import GrayscalePreprocess
from gnet.weights import LoadedModel, ModelCard

TINY_CLASSES = [f"c{i}" for i in range(10)]


def make_loaded(seed: int = 0, input_size: int = 64) -> LoadedModel:
    """A 10-class GoogLeNet at 64 px with a gray transform: fast enough for any test."""
    card = ModelCard(
        name="tiny test net",
        source="test",
        classes=TINY_CLASSES,
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
