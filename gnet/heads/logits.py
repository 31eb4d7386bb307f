"""The three heads' logits over a labelled image set: shipped, read from the disk cache, or computed.

Every dataset-wide view of the heads (:mod:`gnet.heads.stats`, :mod:`gnet.heads.early_exit`) starts
from one N x classes array of logits per head. A forward pass computes all three heads, so
one pass over the set gives everything; optionally it also records pooled features (the
spatial mean of any probe point's output, e.g. inception5b's, the main head's input) that
:mod:`gnet.heads.in_domain` needs.

Where the logits come from, cheapest first:

1. **shipped**: for the bundled weights on the full Fashion-MNIST test set,
   ``assets/head_logits.npz`` (float16, written by ``scripts/ship_test_logits.py``). Its card
   names the weights' sha256 and the data's key (:func:`gnet.storage.save_asset`), and it is
   used only when both match the loaded weights and the asked-for data.
2. **disk cache**: :func:`gnet.storage.load_cached` under the weights' hash and the data's
   key, written atomically after a computation, so an interrupted run leaves nothing.
3. **computed**: batched forwards in eval mode, the model's lock taken batch by batch (see
   :func:`gnet.guard.exclusive`), so other sessions' single-image analyses are not blocked
   for the whole pass; ``progress(done, total)`` is called after every batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import storage
from ..guard import exclusive
from ..inspect.evaluation import LabelledImages
from ..inspect.probe import capture, capture_points
from ..net.layers import HEADS
from ..storage import load_asset, load_cached, save_asset, save_computed
from ..weights.card import LoadedModel

__all__ = [
    "CACHE_KIND",
    "HeadLogitSet",
    "Progress",
    "compute_logits",
    "head_logits",
    "read_shipped",
    "stored_logits",
    "write_shipped",
]

CACHE_KIND = "head_logits"  # the disk cache's kind, and the shipped asset's name (assets/head_logits.npz, .json)
FEATURES = "features/"  # array names of pooled features: "features/inception5b", beside the heads' names
Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass
class HeadLogitSet:
    """Each head's logits on every image of a set, with the labels they are judged against.

    ``labels`` holds -1 for an image without a known label. ``features`` maps each point
    asked for (``inception5b``, ``maxpool2``...) to its output's spatial mean, N x channels.
    """

    name: str
    classes: list[str]
    labels: np.ndarray  # N, int64
    logits: dict[str, np.ndarray]  # head -> N x classes, float32
    origin: str  # "shipped", "disk cache" or "computed"
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def probs(self, head: str) -> np.ndarray:
        """Softmax of ``head``'s logits in float64 (N x classes), computed stably."""
        z = self.logits[head].astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        """What the set is (not the arrays)."""
        return {
            "data": self.name,
            "images": len(self),
            "labelled": int((self.labels >= 0).sum()),
            "classes": len(self.classes),
            "origin": self.origin,
        }


def compute_logits(
    loaded: LoadedModel,
    data: LabelledImages,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
    features: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Every head's logits (N x classes float32) on ``data``, and the spatial mean of each point in
    ``features`` (any of :func:`gnet.inspect.probe.capture_points`, under ``"features/<point>"``): batched forwards.

    Each batch takes the model's lock on its own: a pass over 10,000 images takes minutes on
    a CPU, and a shared model must keep answering other sessions meanwhile.
    """
    net = loaded.net
    available = capture_points(net)
    points = {name: available[name] for name in features}
    out: dict[str, list[np.ndarray]] = {name: [] for name in (*HEADS, *(FEATURES + p for p in points))}
    done = 0
    for inputs, _labels, _indices in data.batches(batch_size):
        x = inputs.to(loaded.device)
        with exclusive(net, training=False), torch.inference_mode(), capture(net, points) as store:
            logits = net(x)
            for head in HEADS:
                out[head].append(getattr(logits, head).float().cpu().numpy())
            for name, value in store.items():
                out[FEATURES + name].append(value.float().mean((2, 3)).cpu().numpy())
        done += len(x)
        if progress is not None:
            progress(done, len(data))
    classes = len(loaded.classes)
    return {
        name: np.concatenate(parts) if parts else np.zeros((0, classes if name in HEADS else 0), np.float32)
        for name, parts in out.items()
    }


def _cache_key(loaded: LoadedModel, data: LabelledImages) -> dict[str, Any]:
    return {"weights": loaded.weights_hash, **data.key}


def _from_arrays(data: LabelledImages, arrays: dict[str, np.ndarray], origin: str) -> HeadLogitSet:
    return HeadLogitSet(
        name=data.name,
        classes=list(data.classes),
        labels=data.labels.numpy().astype(np.int64),
        logits={h: np.asarray(arrays[h], dtype=np.float32) for h in HEADS},
        origin=origin,
        features={
            k.removeprefix(FEATURES): np.asarray(v, np.float32) for k, v in arrays.items() if k.startswith(FEATURES)
        },
    )


def read_shipped() -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The shipped file's card (its ``key``: weights hash and data; how it was made) and arrays; None if absent."""
    arrays = load_asset(CACHE_KIND, {})
    if arrays is None:
        return None
    return json.loads((storage.ASSETS_DIR / f"{CACHE_KIND}.json").read_text()), arrays


def write_shipped(
    arrays: dict[str, np.ndarray], labels: np.ndarray, key: dict[str, Any], card: dict[str, Any]
) -> Path:
    """Ship the heads' logits as float16 with their labels, keyed like the disk cache (:func:`gnet.storage.save_asset`)."""
    halves = {h: arrays[h].astype(np.float16) for h in HEADS}
    path, _ = save_asset(CACHE_KIND, key, {"labels": labels.astype(np.uint16), **halves}, card)
    return path


def stored_logits(loaded: LoadedModel, data: LabelledImages, features: Sequence[str] = ()) -> HeadLogitSet | None:
    """The heads' logits on ``data`` when they need no computation: shipped, or in the disk cache; else None."""
    key = _cache_key(loaded, data)
    wanted = [*HEADS, *(FEATURES + p for p in features)]
    # Features are never shipped: a request for them goes to the disk cache alone.
    sources = ((load_asset, "shipped"), (load_cached, "disk cache"))[1 if features else 0 :]
    for load, origin in sources:
        arrays = load(CACHE_KIND, key)
        if arrays is None or not all(name in arrays for name in wanted) or len(arrays["main"]) != len(data):
            continue
        if "labels" in arrays and not np.array_equal(arrays["labels"], data.labels.numpy()):
            continue
        return _from_arrays(data, {name: arrays[name] for name in wanted}, origin)
    return None


def head_logits(
    loaded: LoadedModel,
    data: LabelledImages,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
    cache: bool = True,
    features: Sequence[str] = (),
) -> HeadLogitSet:
    """The heads' logits on ``data``: shipped, else from the disk cache, else computed (and cached).

    ``features`` also returns those points' pooled features, which are never shipped, so they
    come from the disk cache or a computation. ``cache=False`` neither reads nor writes the cache.
    Raises :class:`gnet.errors.DatasetError` when an image of ``data`` cannot be read.
    """
    if cache:
        found = stored_logits(loaded, data, features)
        if found is not None:
            return found
    arrays = compute_logits(loaded, data, batch_size=batch_size, progress=progress, features=features)
    if cache:
        save_computed(CACHE_KIND, _cache_key(loaded, data), arrays)
    return _from_arrays(data, arrays, "computed")
