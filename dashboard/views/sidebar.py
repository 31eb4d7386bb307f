"""The sidebar on every page: the image, the weights (with their model card) and the device."""

from __future__ import annotations

import streamlit as st

import gnet
from dashboard import url
from dashboard.cache import images, models
from dashboard.state import (
    IMAGE_FROM_SAMPLES,
    IMAGE_FROM_SET,
    Keys,
    Selection,
    default_weights,
    picked_image,
    resolved_device,
)
from dashboard.views.common import download_json
from gnet.data.images import SUPPORTED_EXTENSIONS
from gnet.weights.sources import split_source, with_overlay

__all__ = ["render"]

_SAMPLE, _UPLOAD, _CAMERA = IMAGE_FROM_SAMPLES, "Upload", "Camera"
_CHECKPOINT = "upload a checkpoint"


def render() -> Selection:
    """Draw the sidebar and return what it selects (errors are carried, not raised)."""
    with st.sidebar:
        st.subheader("Image")
        image = _image()
        st.subheader("Weights")
        weights, label, weights_error = _weights()
        _imagenet_download(weights)
        if weights_error is None:
            weights = _labels_overlay(_aux_overlay(weights))
        device, device_error = resolved_device()
        if weights_error is None and device_error is None:
            weights_error = _model_card(weights, device, label)
        st.caption(f"Device: **{models.device_name(device)}**")
    return Selection(
        weights=weights, device=device, weights_label=label, weights_error=weights_error or device_error, **image
    )


def _image() -> dict:
    mode = st.radio("Image from", (_SAMPLE, _UPLOAD, _CAMERA, IMAGE_FROM_SET), horizontal=True, key=Keys.IMAGE_MODE)
    if mode == IMAGE_FROM_SET:
        return _picked()
    try:
        if mode == _SAMPLE:
            found = images.samples()
            if not found:
                return {"image_error": "No sample images found in assets/samples: upload an image instead."}
            by_name = {s.name: s for s in found}
            url.restore(url.SAMPLE, Keys.SAMPLE, found[0], lambda s: s in found, parse=by_name.__getitem__,
                        what="sample image")
            sample = st.selectbox("Sample", found, format_func=lambda s: s.name, key=Keys.SAMPLE)
            url.publish(url.SAMPLE, sample.name)
            decoded = images.decode_sample(str(sample.path))
        else:
            if mode == _UPLOAD:
                upload = st.file_uploader("Image file", type=list(SUPPORTED_EXTENSIONS), key=Keys.UPLOAD)
            else:
                upload = st.camera_input("Take a photo", key=Keys.CAMERA)
            url.publish(url.SAMPLE, None)  # an upload is not shared through the address
            if upload is None:
                return {}
            decoded = images.decode_bytes(upload.file_id, upload.name, upload.getvalue())
            sample = None
    except gnet.GNetError as e:
        return {"image_error": str(e)}
    st.image(decoded.preview, caption=decoded.name, width=160)
    return {"image": decoded.image, "image_name": decoded.name, "digest": decoded.digest, "sample": sample}


def _picked() -> dict:
    """The image picked in the Heads page's disagreement gallery, or how to pick one."""
    url.publish(url.SAMPLE, None)  # like an upload, a picked image is not shared through the address
    picked = picked_image()
    if picked is None:
        st.caption("Click an image in the disagreement gallery of the **Heads** page to look at it here.")
        return {}
    st.image(picked.image, caption=picked.name, width=160)
    return {"image": picked.image, "image_name": picked.name, "digest": picked.digest, "label": picked.label}


def _weights() -> tuple[str, str, str | None]:
    """The weights source (a name or a checkpoint path), an upload's own name, and why it cannot be used, if so."""
    default = default_weights()
    options = [*gnet.SOURCES, _CHECKPOINT]
    if default not in options:
        options.insert(0, default)  # a checkpoint path given in $GNET_WEIGHTS
    url.restore(url.WEIGHTS, Keys.WEIGHTS, default, options.__contains__, what="weights source")
    choice = st.selectbox(
        "Source", options, key=Keys.WEIGHTS, help="; ".join(f"**{k}**: {v}" for k, v in gnet.SOURCES.items()),
    )
    url.publish(url.WEIGHTS, choice if choice in gnet.SOURCES else None)  # names only, never a path
    if choice != _CHECKPOINT:
        return choice, "", None
    upload = st.file_uploader("Checkpoint (.pt, .pth)", type=["pt", "pth"], key=Keys.CHECKPOINT)
    if upload is None:
        return choice, "", "Upload a checkpoint file (.pt or .pth) in the sidebar, or pick another weights source."
    return models.checkpoint_file(upload.file_id, upload.getvalue()), upload.name, None


def _model_card(weights: str, device: str, label: str) -> str | None:
    """Load the weights and show their card one click away; return the error sentence if any."""
    try:
        loaded = models.model(weights, device, label)
    except gnet.GNetError as e:
        return str(e)  # the page shows it where its content would be
    card = loaded.card
    with st.expander(f"Model card: {card.name}"):
        st.markdown(
            f"- **source**: {card.source}\n"
            f"- **classes**: {len(card.classes)} ({', '.join(card.classes[:5])}{', ...' if len(card.classes) > 5 else ''})\n"
            f"- **input**: {card.input_size} x {card.input_size}\n"
            f"- **heads trained**: "
            + ", ".join(f"{h} {'yes' if ok else 'NO'}" for h, ok in card.heads_trained.items())
        )
        for note in card.notes:
            st.caption(note)
        if card.accuracy:
            st.json(card.accuracy, expanded=False)
        download_json(card.to_dict(), "Model card (JSON)", "model_card.json")
    return None


def _aux_overlay(weights: str) -> str:
    """The weights with an optional overlay of distilled aux heads (``gnet distill-aux``) stacked on them."""
    if not st.toggle("Stack distilled aux heads", key=Keys.AUX_OVERLAY_ON,
                     help="Aux heads fitted to these weights' main head on a frozen trunk (gnet distill-aux)."):
        return weights
    upload = st.file_uploader(
        "Overlay from gnet distill-aux (.pt)", type=["pt"], key=Keys.AUX_OVERLAY,
        help="Refused unless it was distilled on exactly these weights.",
    )
    if upload is None:
        return weights
    return with_overlay(weights, models.checkpoint_file(upload.file_id, upload.getvalue()))


def _labels_overlay(weights: str) -> str:
    """The weights with the heads retrained in this session (the Heads page's "Your own classes") stacked on them,
    while the weights they were fitted on stay selected."""
    found = st.session_state.get(Keys.LABELS_OVERLAY)
    if found is None or found["base"] != weights:
        return weights
    st.caption(f"Heads retrained on **{found['card']['data']['name']}**: see the Heads page to go back.")
    return with_overlay(weights, found["path"], "labels")


def _imagenet_download(weights: str) -> None:
    """When ImageNet weights are wanted but not cached: a button that downloads them, with progress."""
    if split_source(weights)[0] not in ("auto", "imagenet"):
        return
    from gnet.weights.hub import IMAGENET_BYTES, download_imagenet  # torch: imported once the image is drawn
    from gnet.weights.loader import imagenet_cache_path

    if imagenet_cache_path().exists():
        return
    if not st.button("Download the ImageNet weights", key=Keys.IMAGENET_DOWNLOAD, icon=":material/download:",
                     help=f"{IMAGENET_BYTES / 2**20:.0f} MB into the torch hub cache, with torchvision's downloader"):
        return
    bar = st.progress(0.0, text="Downloading the ImageNet weights...")
    try:
        download_imagenet(progress=lambda done, total: bar.progress(min(done / total, 1.0), text=f"{done / 2**20:.1f} MB"))
    except gnet.GNetError as e:
        bar.empty()
        st.error(str(e))
        return
    models.model.clear()  # "auto" now means ImageNet
    st.rerun()
