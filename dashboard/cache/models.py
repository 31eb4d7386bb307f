"""The loaded network per (weights, device), the device's name, and uploaded checkpoints on disk.

The model is loaded once per (weights, device) and shared by every session
(``st.cache_resource``; :func:`gnet.guard.exclusive` serialises its use).
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import threading
from pathlib import Path

import streamlit as st

import gnet
from dashboard.cache.bounds import DEVICES_KEPT, MODELS_KEPT, TTL_S, UPLOAD_DIGESTS_KEPT, UPLOADS_MAX_BYTES
from gnet.storage import atomic_write

__all__ = ["checkpoint_file", "device_name", "model", "seconds_per_pass", "upload_dir"]

_UPLOADS_LOCK = threading.Lock()


@st.cache_resource(max_entries=MODELS_KEPT, ttl=TTL_S, show_spinner="Loading the weights...")
def model(weights: str, device: str, _label: str = "") -> gnet.LoadedModel:
    """The network for a weights source on a device, loaded once and shared.

    ``_label`` names an uploaded checkpoint as its user named it (messages never show the
    server's temporary path); it is not part of the key, the file's hash-named path is. Never downloads: a page must not hang on a network that may not
    be there. The error tells the user where to put the ImageNet file.
    """
    return gnet.load(weights, device, download=False, label=_label or None)


@st.cache_resource(max_entries=MODELS_KEPT, ttl=TTL_S, show_spinner="Timing one forward and backward pass...")
def seconds_per_pass(weights: str, device: str) -> float:
    """One image's forward and backward through the loaded net, measured here (for attribution estimates)."""
    import torch

    from gnet.inspect.attributions import time_forward_backward

    loaded = model(weights, device)
    size = loaded.card.input_size
    return time_forward_backward(loaded.net, torch.zeros(1, 3, size, size, device=loaded.device))


@st.cache_resource(max_entries=DEVICES_KEPT, show_spinner=False)
def device_name(device: str) -> str:
    """The device, described with its GPU's name when there is one."""
    import torch

    return gnet.describe_device(torch.device(device))


@st.cache_resource(show_spinner=False)
def upload_dir() -> Path:
    """This server process's own folder for uploaded checkpoints: private (0700), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="gnet-uploads-"))  # mkdtemp creates it readable by this user only
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@st.cache_resource(max_entries=UPLOAD_DIGESTS_KEPT, ttl=TTL_S, show_spinner=False)
def _upload_digest(file_id: str, _data: bytes) -> str:
    """The sha256 of an upload, once per upload (``file_id`` is a fresh UUID for every uploaded file)."""
    return hashlib.sha256(_data).hexdigest()


def checkpoint_file(file_id: str, data: bytes) -> str:
    """An uploaded checkpoint as a file in :func:`upload_dir`, named by its content's hash.

    The file is written whole or not at all (renamed into place), and the folder keeps at most
    UPLOADS_MAX_BYTES: the least recently used uploads go first. A model loaded from a file stays
    loaded after the file goes; the file is written again if that upload is chosen again.
    """
    folder = upload_dir()
    path = folder / f"upload-{_upload_digest(file_id, data)[:16]}.pt"
    with _UPLOADS_LOCK:
        if path.exists():
            path.touch()  # most recently used
        else:
            atomic_write(path, data)
        files = sorted(folder.glob("upload-*.pt"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= UPLOADS_MAX_BYTES or old == path:
                continue
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
    return str(path)
