"""What a loaded set of weights is: the model card a user reads, and the model ready for inference.

Kept apart from :mod:`gnet.weights.loader` so that code which only handles a loaded model
(the overlays stacked on it, every inspection) depends on these two types, not on the loader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from ..device import describe_device
from ..net.layers import HEADS
from ..net.model import GoogLeNet
from ..storage import file_sha256

__all__ = ["LoadedModel", "ModelCard"]


@dataclass(frozen=True)
class ModelCard:
    """What a user must know about a set of weights before trusting its predictions."""

    name: str
    source: str
    classes: list[str]
    input_size: int
    normalization: dict[str, list[float]]
    heads_trained: dict[str, bool]
    accuracy: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def untrained_heads(self) -> list[str]:
        """Heads whose weights were never trained: their predictions are noise."""
        return [h for h in HEADS if not self.heads_trained.get(h, False)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "num_classes": len(self.classes),
            "classes": list(self.classes),
            "input_size": self.input_size,
            "normalization": self.normalization,
            "heads_trained": self.heads_trained,
            "untrained_heads": self.untrained_heads,
            "accuracy": self.accuracy,
            "notes": self.notes,
            **self.details,
        }


@dataclass
class LoadedModel:
    """A model ready for inference: network on its device, card, and preprocessing."""

    net: GoogLeNet
    card: ModelCard
    transform: Callable[[Image.Image], Tensor]
    device: torch.device
    source: str
    files: tuple[Path, ...] = ()  # the files the weights were read from (none for random weights)

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    @cached_property
    def weights_hash(self) -> str:
        """sha256 of the weights: of the file they were read from (``sha256sum`` gives the same),
        else of every tensor of the state dict. Disk caches and exports name the weights by it."""
        if len(self.files) == 1:
            return file_sha256(self.files[0])
        digest = hashlib.sha256()
        if self.files:
            for path in self.files:
                digest.update(file_sha256(path).encode())
            return digest.hexdigest()
        for name, tensor in self.net.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    def preprocess(self, image: Any) -> Tensor:
        """Any image input (path, bytes, PIL) -> a 1 x 3 x H x W tensor on the model's device."""
        from ..data.images import load_image  # images imports nothing from here; local import keeps load() light

        return self.transform(load_image(image)).unsqueeze(0).to(self.device)
