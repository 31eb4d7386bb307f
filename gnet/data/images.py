"""Decoding and validating user images.

:func:`load_image` turns whatever a user hands us (a path, uploaded bytes, a file
object, a PIL image) into an upright 8-bit RGB image, or raises
:class:`~gnet.errors.ImageError` with one sentence the user can act on. It refuses
oversized images from the header alone, before any pixel data is decoded, so a
small file that expands to gigabytes (a decompression bomb) costs nothing.
:func:`image_digest` gives the stable hash the dashboard caches analyses under.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

__all__ = [
    "DISPLAY_SIDE",
    "MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "check_image_file",
    "image_digest",
    "load_image",
    "preview",
]

# 40 MP admits every common camera and phone photo (12-24 MP typical) and 8K UHD
# frames (33 MP), while bounding the decoded RGB copy to ~120 MB. The network only
# ever sees a 224x224 resize, so larger inputs buy nothing but memory. PIL's own
# guard warns at ~89 MP and refuses at ~179 MP, too late for a shared server.
MAX_PIXELS = 40_000_000

# The long side of the copy a viewer keeps (load_image(..., max_side=DISPLAY_SIDE)): enough for any
# view the dashboard draws and 4.6x the largest model input (224 px), 3 MiB as RGB whatever the upload.
DISPLAY_SIDE = 1024
# A preview is padded until its short side is at least this fraction of its long side, so that
# a 3000 x 8 strip stays visible (and a viewer never computes a height of zero).
_PREVIEW_MIN_ASPECT = 1 / 8

SUPPORTED_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")

# Only these PIL decoders are tried. Restricting them keeps exotic plugins off user
# uploads (EPS, for one, runs Ghostscript). Multi-picture camera JPEGs (MPO) come
# through the JPEG decoder.
_PIL_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")

_EXTENSIONS_TEXT = "jpg, png, webp, bmp, gif, tiff"

# What PIL raises for data it cannot decode; DecompressionBombError is handled apart.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

ImageSource = str | os.PathLike | bytes | bytearray | BinaryIO | Image.Image


def load_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, max_side: int | None = None, name: str | None = None
) -> Image.Image:
    """Decode ``source`` into an upright 8-bit RGB image.

    ``source`` is a path, the encoded bytes, a binary file object (a Streamlit
    upload works) or an already opened PIL image (used at its current frame). The
    EXIF orientation is applied, animated files give their first frame and
    transparent pixels are composited on white. Files opened here are closed before returning; a file object passed
    in is read but left open.

    ``max_side`` bounds the result's long side (a viewer's copy, see :data:`DISPLAY_SIDE`): a
    JPEG is then decoded at a reduced scale by the codec itself (PIL's ``draft``), so a 35
    megapixel photo never exists at full size in memory. ``name`` is how error messages
    name bytes or a file object (an upload's file name).

    Raises:
        ImageError: the source is missing, empty, not a decodable image in one of
            :data:`SUPPORTED_EXTENSIONS`, or has more than ``max_pixels`` pixels.
    """
    label = f"'{name}'" if name else None
    if isinstance(source, Image.Image):
        with _decode_errors_as_image_error(label or "the image"):
            return _decode(source, label or "the image", max_pixels, max_side)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError(f"{_capitalized(label or 'the image data')} is empty (0 bytes); upload or choose an image file.")
        return _open_and_decode(io.BytesIO(source), label or "the image data", max_pixels, max_side)
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(source), max_pixels, max_side)
    if hasattr(source, "read"):
        own = getattr(source, "name", None)
        label = label or (f"'{own}'" if isinstance(own, str) and own else "the image data")
        return _open_and_decode(source, label, max_pixels, max_side)
    raise TypeError(f"load_image expects a path, bytes, a binary file or a PIL image, got {type(source).__name__}")


def image_digest(image: Image.Image) -> str:
    """Return a sha256 hex digest of the image's mode, size and pixels (and palette).

    Equal pixels give equal digests across runs and machines, whatever file the
    image came from, so the dashboard can cache analyses by it.
    """
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    palette = image.getpalette()
    if palette is not None:
        digest.update(bytes(palette))
    return digest.hexdigest()


def preview(image: Image.Image, side: int = 320) -> Image.Image:
    """A copy at most ``side`` pixels on its long side, padded with gray when it is extremely thin.

    A 3000 x 8 strip becomes 320 x 40 (the strip in the middle of a gray band), which every
    viewer can draw; the original proportions of ordinary photos are kept.
    """
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    w, h = small.size
    short = max(1, round(max(w, h) * _PREVIEW_MIN_ASPECT))
    if min(w, h) >= short:
        return small
    canvas = Image.new("RGB", (max(w, short), max(h, short)), (128, 128, 128))
    canvas.paste(small, ((canvas.width - w) // 2, (canvas.height - h) // 2))
    return canvas


def check_image_file(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Check from its header alone that ``path`` is a file :func:`load_image` would accept; return (width, height).

    Reads the first few kilobytes and decodes no pixel, so a training folder of many files can
    be checked before the run starts. Pixel data that is corrupt past a valid header is only
    found by decoding. Raises :class:`~gnet.errors.ImageError` with the same sentences as
    :func:`load_image`.
    """
    return _load_path(Path(path), max_pixels, None, header_only=True)


def _load_path(path: Path, max_pixels: int, max_side: int | None, *, header_only: bool = False) -> Any:
    """Open ``path`` ourselves so filesystem problems get their own messages."""
    label = f"'{path}'"
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ImageError(f"Image file {label} does not exist; check the path.") from None
    except IsADirectoryError:
        raise ImageError(f"{label} is a directory, not an image file; pick a file inside it.") from None
    except PermissionError:
        raise ImageError(f"Image file {label} cannot be read (permission denied); check its permissions.") from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ImageError(f"Image file {label} is empty (0 bytes); choose another file.")
        return _open_and_decode(handle, label, max_pixels, max_side, header_only=header_only)


def _open_and_decode(
    fp: BinaryIO, label: str, max_pixels: int, max_side: int | None, *, header_only: bool = False
) -> Any:
    """Identify the format from the header alone, then decode (or, ``header_only``, return the size)."""
    with _decode_errors_as_image_error(label), Image.open(fp, formats=_PIL_FORMATS) as img:
        if header_only:
            _check_size(img, label, max_pixels)
            return img.size
        return _decode(img, label, max_pixels, max_side)


@contextmanager
def _decode_errors_as_image_error(label: str) -> Iterator[None]:
    """Turn every PIL decoding failure inside the block into an ImageError naming ``label``."""
    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            f"{_capitalized(label)} is not an image PIL can decode ({_EXTENSIONS_TEXT}): cannot identify image file."
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{_capitalized(label)} is too large to decode safely ({_first_line(exc)}); downscale it first."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(
            f"{_capitalized(label)} could not be decoded ({_first_line(exc)}); the file may be truncated or corrupt."
        ) from exc


def _decode(img: Image.Image, label: str, max_pixels: int, max_side: int | None = None) -> Image.Image:
    """Check the size, decode the first frame, apply EXIF orientation, convert to RGB (bounded by ``max_side``)."""
    _check_size(img, label, max_pixels)
    if max_side is not None and img.format == "JPEG":
        img.draft("RGB", (max_side, max_side))  # the codec decodes at 1/2, 1/4 or 1/8 scale, never below max_side
    img.load()  # a freshly opened file is on its first frame: that is the frame we decode
    upright = ImageOps.exif_transpose(img)
    try:
        rgb = _to_rgb(upright)
        if max_side is not None and max(rgb.size) > max_side:
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return rgb
    except ValueError as exc:  # PIL has no conversion for a few rare modes
        raise ImageError(
            f"{_capitalized(label)} uses colour mode {img.mode!r}, which cannot be converted to RGB; "
            "save it as an 8-bit RGB image."
        ) from exc


def _check_size(img: Image.Image, label: str, max_pixels: int) -> None:
    """Refuse an image above ``max_pixels`` (or PIL's own limit) or without pixels, from its header."""
    width, height = img.size
    # PIL only warns between MAX_IMAGE_PIXELS and twice that; refuse there too. (Turning the
    # warning into an error with warnings.catch_warnings would change process-wide state that
    # other threads share.)
    if Image.MAX_IMAGE_PIXELS:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if width * height > max_pixels:
        raise ImageError(
            f"{_capitalized(label)} is {width}x{height} ({width * height / 1e6:.1f} megapixels), "
            f"above the {max_pixels / 1e6:g} megapixel limit; downscale it first."
        )
    if width * height == 0:
        raise ImageError(f"{_capitalized(label)} has no pixels ({width}x{height}); choose another image.")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, rescaling deep images and flattening alpha on white."""
    if img.mode.startswith("I") or img.mode == "F":
        return _deep_to_gray(img).convert("RGB")
    if img.mode == "La":  # premultiplied; PIL only converts it via LA
        img = img.convert("LA")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _deep_to_gray(img: Image.Image) -> Image.Image:
    """Rescale a 16/32-bit integer or float image to 8-bit "L" over its value range.

    PIL's ``convert("L")`` clips these to 0..255, which turns a 16-bit photo white.
    """
    values = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    elif img.mode == "I" and values.min() >= 0 and values.max() <= 65535:
        low, high = 0.0, 65535.0  # PIL stores 16-bit PNG/PGM/TIFF samples in "I"
    elif img.mode == "F" and np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1:
        low, high = 0.0, 1.0  # the usual convention for float images
    else:  # no standard range: stretch what is there
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    gray = np.rint((values - low) * scale).clip(0, 255).astype(np.uint8)
    return Image.fromarray(gray)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message without a trailing period, for one-sentence errors."""
    lines = str(exc).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(exc).__name__


def _capitalized(text: str) -> str:
    """``text`` with its first letter upper-cased, to start a sentence with a label."""
    return text[:1].upper() + text[1:]
