"""Files gnet writes: atomically, so nothing is ever half-written, and a disk cache for results.

A crash, a full disk or a second process writing the same file leaves either the old file or
the new one, never a mix: every write goes to a temporary file in the same folder, which is
then renamed into place (atomic on one file system). The disk cache holds results that take
minutes to compute (dataset-wide statistics of a set of weights) under a key naming what they
depend on, usually the weights' hash and the data. Shipped results of that kind (for the bundled
weights) are assets with a JSON card recording the same key, so they are used only for the
weights and data they were computed from.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ASSETS_DIR",
    "CACHE_ENV",
    "atomic_write",
    "cache_dir",
    "file_sha256",
    "load_asset",
    "load_cached",
    "load_stored",
    "prune_cache",
    "save_asset",
    "save_cached",
    "save_computed",
    "stored_or_built",
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


def _plain(key: Mapping[str, Any]) -> Any:
    """``key`` as it reads back from JSON (tuples become lists), for comparing with a card's."""
    return json.loads(json.dumps(dict(key), sort_keys=True, default=str))


def save_asset(
    name: str, key: Mapping[str, Any], arrays: Mapping[str, Any], card: Mapping[str, Any]
) -> tuple[Path, Path]:
    """Write ``ASSETS_DIR/<name>.npz`` (compressed arrays) and ``<name>.json`` (``card`` plus ``key``), atomically.

    ``key`` names what the arrays were computed from (the weights' sha256 and the data), as for
    :func:`save_cached`; :func:`load_asset` hands the arrays back only for an equal key.
    """
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    arrays_path = atomic_write(ASSETS_DIR / f"{name}.npz", buffer.getvalue())
    text = json.dumps({**dict(card), "key": _plain(key)}, indent=2) + "\n"
    return arrays_path, atomic_write(ASSETS_DIR / f"{name}.json", text.encode())


def load_asset(name: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The arrays of asset ``name`` when its card's key has every item of ``key``; else None.

    None also when the asset is absent or unreadable. Pass the whole key (weights and data) to
    get the asset only for that data, or ``{"weights": ...}`` alone to get it whatever its data.
    """
    import numpy as np

    card_path, arrays_path = ASSETS_DIR / f"{name}.json", ASSETS_DIR / f"{name}.npz"
    try:
        card = json.loads(card_path.read_text())
        shipped, wanted = card.get("key"), _plain(key)
        if not isinstance(shipped, dict) or any(shipped.get(k) != v for k, v in wanted.items()):
            return None
        with np.load(arrays_path, allow_pickle=False) as npz:
            return {n: npz[n] for n in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def load_stored(name: str, key: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The arrays of a result that needs no computation, and where they came from; else None.

    The shipped asset ``name`` when its card's key matches (``"shipped"``), else the disk cache's
    entry of kind ``name`` (``"disk cache"``). Every dataset-wide result (head logits, dataset
    examples, branch importance) is looked up this way, cheapest first.
    """
    found = load_asset(name, key)
    if found is not None:
        return found, "shipped"
    found = load_cached(name, key)
    return None if found is None else (found, "disk cache")


def save_computed(name: str, key: Mapping[str, Any], arrays: Mapping[str, Any]) -> None:
    """:func:`save_cached`, except that a full or read-only disk only warns: it costs a
    recomputation next time, not the result just computed."""
    try:
        save_cached(name, key, arrays)
    except OSError as e:
        warnings.warn(f"{name} was not cached ({e}); set {CACHE_ENV} to a writable folder", stacklevel=2)


def stored_or_built(
    name: str, key: Mapping[str, Any], build: Callable[[], Mapping[str, Any]] | None
) -> tuple[dict[str, Any], str] | None:
    """:func:`load_stored`, else ``build()``'s arrays, saved with :func:`save_computed` (origin
    ``"computed"``); None when nothing is stored and ``build`` is None (the caller may not compute)."""
    found = load_stored(name, key)
    if found is not None or build is None:
        return found
    arrays = dict(build())
    save_computed(name, key, arrays)
    return arrays, "computed"
