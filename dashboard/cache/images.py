"""Decoded images (uploads, camera, samples) as the app keeps them: bounded, with their digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

import gnet
from dashboard.cache.bounds import DECODED_KEPT, TTL_S
from gnet.data.images import DISPLAY_SIDE, image_digest, preview
from gnet.data.samples import Sample, sample_images

__all__ = ["DecodedImage", "decode_bytes", "decode_sample", "samples"]


@dataclass(frozen=True)
class DecodedImage:
    """An image as the app keeps it: at most DISPLAY_SIDE pixels on its long side, never the original."""

    image: Image.Image  # what the network and the views use
    preview: Image.Image  # the sidebar's small copy, padded when extremely thin
    digest: str  # of ``image``'s pixels: the cache key of its analyses
    name: str

    @classmethod
    def of(cls, image: Image.Image, name: str) -> DecodedImage:
        return cls(image, preview(image), image_digest(image), name)


@st.cache_data(show_spinner=False)
def samples() -> list[Sample]:
    """The bundled sample images, Fashion-MNIST first."""
    return sample_images()


@st.cache_resource(max_entries=DECODED_KEPT, ttl=TTL_S, show_spinner="Decoding the image...")
def decode_bytes(file_id: str, name: str, _data: bytes) -> DecodedImage:
    """Uploaded or camera bytes -> a bounded RGB copy, its preview and digest (raises gnet.ImageError naming ``name``).

    Keyed by the upload's ``file_id`` (a fresh UUID per uploaded file or photo), so a rerun
    does not decode the file again. Only the copy of at most DISPLAY_SIDE pixels is kept.
    """
    return DecodedImage.of(gnet.load_image(_data, max_side=DISPLAY_SIDE, name=name), name)


@st.cache_resource(max_entries=DECODED_KEPT, ttl=TTL_S, show_spinner=False)
def decode_sample(path: str) -> DecodedImage:
    return DecodedImage.of(gnet.load_image(Path(path), max_side=DISPLAY_SIDE), Path(path).stem)
