"""Odd but valid images, generated: every kind the app and the CLI must take without a hitch."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def odd_images(folder: Path) -> list[Path]:
    """Write one file per odd kind into ``folder``; the file name says what it is."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = []

    def save(name: str, image: Image.Image, **options) -> None:
        path = folder / name
        image.save(path, **options)
        written.append(path)

    save("wide_3000x8.png", Image.fromarray(rng.integers(0, 256, (8, 3000, 3), dtype=np.uint8)))
    save("tall_8x3000.png", Image.fromarray(rng.integers(0, 256, (3000, 8, 3), dtype=np.uint8)))
    save("single_pixel_1x1.png", Image.new("RGB", (1, 1), (200, 30, 30)))
    deep = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    save("gray_16bit.png", Image.fromarray(deep))
    save("cmyk.jpg", Image.new("CMYK", (80, 60), (0, 128, 255, 30)), format="JPEG")
    palette = Image.new("P", (60, 60), 1)
    palette.putpalette([255, 255, 255, 200, 0, 0] + [0] * (256 * 3 - 6))
    palette.paste(0, (20, 20, 40, 40))
    save("palette_transparent.png", palette, transparency=0)
    frames = [Image.new("RGB", (50, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    save("exif_rotated.jpg", Image.fromarray(rng.integers(0, 256, (40, 90, 3), dtype=np.uint8)), exif=exif)
    png = io.BytesIO()
    Image.new("RGB", (30, 30), (10, 200, 10)).save(png, format="PNG")
    wrong = folder / "png_named_as.jpg"
    wrong.write_bytes(png.getvalue())
    written.append(wrong)
    return written
