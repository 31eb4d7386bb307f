"""Files gnet writes: atomically, so nothing is ever half-written, and a disk cache for results.

A crash, a full disk or a second process writing the same file leaves either the old file or
the new one, never a mix: every write goes to a temporary file in the same folder, which is
then renamed into place (atomic on one file system). The disk cache holds results that take
minutes to compute (dataset-wide statistics of a set of weights) under a key naming what they
depend on, usually the weights' hash and the data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ASSETS_DIR",
    "CACHE_ENV",
    "atomic_write",
    "cache_dir",
    "file_sha256",
    "load_cached",
    "prune_cache",
    "save_cached",
    "torch_save",
]

# What ships with gnet: bundled weights and their card, samples, recorded runs, the paper's Table 1.
ASSETS_DIR = Path(os.environ.get("GNET_ASSETS", Path(__file__).resolve().parent.parent / "assets"))
CACHE_ENV = "GNET_CACHE_DIR"  # where the disk cache lives; default ~/.cache/gnet
CACHE_MAX_ENV = "GNET_CACHE_MAX_MB"  # its bound; the least recently used files go beyond it
CACHE_MAX_MB = 2048
_CHUNK = 1 << 20


def atomic_write(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def torch_save(obj: Any, path: Path | str) -> Path:
    """``torch.save`` that never leaves a broken file behind (an interrupted save keeps the old one)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, buffer.getvalue())


def file_sha256(path: Path | str) -> str:
    """The sha256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$GNET_CACHE_DIR``, else ``~/.cache/gnet``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "gnet"


def _cache_file(kind: str, key: Mapping[str, Any]) -> Path:
    text = json.dumps(dict(key), sort_keys=True, default=str)
    return cache_dir() / kind / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npz"


def load_cached(kind: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The arrays saved by :func:`save_cached` under (``kind``, ``key``), or None (a corrupt file counts as none)."""
    import numpy as np

    path = _cache_file(kind, key)
    if not path.is_file():
        return None
    os.utime(path)  # recently used: pruned last (atime alone is unreliable on noatime mounts)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def save_cached(kind: str, key: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
    """Save numpy arrays under (``kind``, ``key``) in the disk cache, atomically, then keep the cache in its bound."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = atomic_write(_cache_file(kind, key), buffer.getvalue())
    prune_cache(keep=path)
    return path


def prune_cache(keep: Path | None = None) -> None:
    """Delete the least recently used cache files until the cache holds at most ``$GNET_CACHE_MAX_MB`` (2048)."""
    limit = int(float(os.environ.get(CACHE_MAX_ENV, CACHE_MAX_MB)) * (1 << 20))
    files = []
    for path in cache_dir().glob("*/*.npz"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # another process pruned it first
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size
