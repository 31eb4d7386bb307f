"""Preprocessing that turns a user's RGB photo into the input a trained net expects.

ImageNet weights use torchvision's own ``ImageClassification`` transform. This module adds
what torchvision lacks: the Fashion-MNIST look (gray, light garment on a dark background)
for photos, including the decision to invert; and, for nets trained here on a colour image
folder, the evaluation transform of that training (:func:`colour_transform`), built from
torchvision v2 transforms so that training and inference cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GrayscalePreprocess",
    "colour_transform",
    "denormalize",
    "resize_for",
    "should_invert",
]

# ImageNet's per-channel statistics, as torchvision's ImageNet weights (and our colour training) use them.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def should_invert(gray: Image.Image, *, border: float = 0.1) -> bool:
    """True when the image's border is lighter than its centre (dark object on light ground).

    Fashion-MNIST garments are light on a black background; most photos of a garment are
    the opposite, so they are inverted before the net sees them.
    """
    a = np.asarray(gray, dtype=np.float32)
    h, w = a.shape
    bh, bw = max(1, int(h * border)), max(1, int(w * border))
    frame = np.concatenate([a[:bh].ravel(), a[-bh:].ravel(), a[:, :bw].ravel(), a[:, -bw:].ravel()])
    centre = a[h // 4 : h - h // 4, w // 4 : w - w // 4]
    return float(frame.mean()) > float(centre.mean())


class GrayscalePreprocess:
    """Gray -> optional invert -> resize shorter side -> centre crop -> normalize -> 3 channels."""

    def __init__(self, input_size: int, mean: float, std: float, invert: str | bool = "auto") -> None:
        if invert not in ("auto", True, False):
            raise ValueError(f"invert must be 'auto', True or False, got {invert!r}")
        self.input_size = input_size
        self.invert = invert
        self.mean: list[float] = [mean] * 3
        self.std: list[float] = [std] * 3
        self._resize = v2.Compose([v2.Resize(input_size, antialias=True), v2.CenterCrop(input_size)])

    def inverts(self, image: Image.Image) -> bool:
        """Whether this image will be inverted."""
        if self.invert == "auto":
            return should_invert(image.convert("L"))
        return bool(self.invert)

    def __call__(self, image: Image.Image) -> Tensor:
        gray = image.convert("L")
        if self.inverts(gray):
            gray = ImageOps.invert(gray)
        x = F.to_dtype(F.pil_to_tensor(self._resize(gray)), torch.float32, scale=True)  # 1 x H x W
        x = F.normalize(x, self.mean[:1], self.std[:1])
        return x.expand(3, -1, -1).contiguous()  # 3 x H x W: the net's stem takes RGB

    def __repr__(self) -> str:
        return (
            f"GrayscalePreprocess(input_size={self.input_size}, mean={self.mean[0]:.4f}, "
            f"std={self.std[0]:.4f}, invert={self.invert!r})"
        )


def resize_for(input_size: int) -> int:
    """The shorter side a photo is resized to before the centre crop: torchvision's 256 for 224, scaled."""
    return round(input_size * 256 / 224)


def colour_transform(
    input_size: int, mean: Sequence[float], std: Sequence[float], *, resize_size: int | None = None
) -> v2.Compose:
    """RGB photo -> normalized 3 x S x S float tensor: shorter side resized, centre crop, scale, normalize.

    The evaluation transform of colour folder training (:mod:`gnet.data.folders`) and the
    preprocessing of its checkpoints (:mod:`gnet.weights.loader`); ``resize_size`` defaults to
    :func:`resize_for`.
    """
    return v2.Compose([
        v2.PILToTensor(),
        v2.Resize(resize_size or resize_for(input_size), antialias=True),
        v2.CenterCrop(input_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ])


def denormalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A 3 x H x W normalized tensor back to an H x W x 3 float image in [0, 1], for display."""
    # One fused multiply-add in torch. Timed right after a bare forward pass, the former numpy version
    # (six array operations) took 150 to 270 us at 64 to 224 px and this 100 to 175; inside analyze,
    # after its numpy statistics, bench/bench_speed.py's "building the result" phase showed no change
    # beyond noise (0.12 to 0.13 ms). Kept for being one operation in any layout: torch's iterator
    # follows x's memory, so an H x W x C tensor (torchvision converts a PIL image by permuting it)
    # needs no special case, which the numpy version did (0.85 ms at 224 px without it).
    x = x.detach().cpu().float()
    scale, shift = _scale_and_shift(tuple(std), tuple(mean), x.shape[0])
    return torch.addcmul(shift, x, scale).clamp_(0, 1).permute(1, 2, 0).numpy()


@functools.lru_cache(maxsize=8)
def _scale_and_shift(std: tuple[float, ...], mean: tuple[float, ...], channels: int) -> tuple[Tensor, Tensor]:
    """C x 1 x 1 float32 tensors of ``std`` and ``mean`` (one value for every channel, or one per channel): built
    once per normalization, not per image (right after analyze's forward, building them took about a third of
    denormalize's 0.14 to 0.15 ms). Only read, never written."""
    return tuple(torch.tensor(v, dtype=torch.float32).expand(channels).view(channels, 1, 1) for v in (std, mean))
