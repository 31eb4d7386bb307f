"""An attribution map drawn over the image it explains, as plain RGB pixels for a file (``gnet attribute --out``).

The app draws the same maps with plotly (``dashboard.figures.charts.overlay``) from the same colour
stops, so a map looks alike in a browser and in a file. PIL has no colour maps and matplotlib is not a
dependency, so the blend is written here: a few lines of numpy (no torch, so the app's figures can
import the stops cheaply).
"""

from __future__ import annotations

import numpy as np

__all__ = ["OVERLAY_STOPS", "overlay_image"]

# (level, RGB, opacity) from no evidence to the map's peak: see-through where the map is low, so the
# image stays readable under the hot spots.
OVERLAY_STOPS: tuple[tuple[float, tuple[int, int, int], float], ...] = (
    (0.0, (0, 0, 0), 0.0),
    (0.25, (120, 28, 109), 0.35),
    (0.6, (237, 105, 37), 0.7),
    (1.0, (252, 255, 164), 0.9),
)


def overlay_image(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``heat`` (H x W, 0 or more) over ``image`` (H x W x 3 floats in [0, 1]), as H x W x 3 uint8.

    The scale runs from 0 to the map's peak, as in the app: a map that is zero everywhere leaves
    the image as it is. Each pixel takes the stops' colour and opacity at its level, linearly
    interpolated (as plotly interpolates a colour scale), and is blended with the image by that opacity.
    """
    if heat.shape != image.shape[:2]:
        raise ValueError(f"the map is {heat.shape}, the image {image.shape[:2]}: they must be the same size")
    level = np.clip(heat / max(float(heat.max()), 1e-12), 0.0, 1.0)
    levels = [stop[0] for stop in OVERLAY_STOPS]
    colour = np.stack([np.interp(level, levels, [stop[1][c] for stop in OVERLAY_STOPS]) for c in range(3)], -1)
    alpha = np.interp(level, levels, [stop[2] for stop in OVERLAY_STOPS])[..., None]
    blended = image * (1.0 - alpha) + colour / 255.0 * alpha
    return np.round(np.clip(blended, 0.0, 1.0) * 255).astype(np.uint8)
