"""What the training benchmarks share: a generated folder of colour images, and a median (min, max) summary."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["make_folder", "spread"]


def make_folder(root: Path, n: int, *, classes: int = 4, seed: int = 0) -> Path:
    """``n`` 160x120 RGB JPEGs (smooth gradients plus noise, so they compress like photos) in ``classes`` folders."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 160)[None, :, None] * np.linspace(0.2, 1, 120)[:, None, None]
    for i in range(n):
        k = i % classes
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        tint = np.array([(k + 1) % 2, (k // 2) % 2, 0.5]) * 160
        pixels = np.clip(ramp * tint + rng.normal(0, 25, (120, 160, 3)) + 40, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=85)
    return root


def spread(values: list[float], unit: str = "", digits: int = 1) -> str:
    """``median X (min A, max B)`` with ``unit`` after the median."""
    return (f"median {statistics.median(values):.{digits}f}{unit} "
            f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})")
