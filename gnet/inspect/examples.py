"""Dataset examples: for every channel of every Inception branch, the images of a set that excite it most.

For each of the 5,488 channels of inception3a..inception5b, the k = 9 images with the highest
spatial-mean activation, and the 9 with the highest spatial-max activation together with where
that maximum is. One batched pass over the set fills them all: each batch's nine module outputs
(captured by :func:`gnet.inspect.probe.capture`; a branch's channels are a slice of its module's output,
:attr:`gnet.net.layers.ChannelTarget.offset`) are reduced to a mean and a max per channel, and merged
into the running top-k of every channel at once. No per-channel forward.

:func:`example_index` gives the index for a model: for the bundled weights over the 10,000
Fashion-MNIST test images it ships in ``assets/`` (built by ``scripts/build_channel_examples.py``;
indices and values only, the pictures come from the dataset), for anything else it is read from
the disk cache or computed with progress and cached, keyed by weights hash and data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..guard import exclusive
from ..net.layers import INCEPTION_MODULES, ChannelTarget, module_channels
from ..storage import stored_or_built
from ..weights.card import LoadedModel
from .evaluation import LabelledImages, batch_size_for, evaluation_set
from .probe import capture

__all__ = ["ASSET", "K", "Example", "ExampleIndex", "build_index", "example_index", "module_rows"]

ASSET = "channel_examples"  # assets/channel_examples.{npz,json}, and the disk cache's kind
K = 9
Ranking = Literal["mean", "max"]
Progress = Callable[[float], None]


def module_rows() -> dict[str, tuple[int, int]]:
    """Each Inception module's (first row, channel count) among the index's 5,488 rows, in depth order."""
    rows, start = {}, 0
    for module in INCEPTION_MODULES:
        width = module_channels(module)
        rows[module] = (start, width)
        start += width
    return rows


_ROWS = module_rows()
CHANNELS = sum(width for _, width in _ROWS.values())


@dataclass(frozen=True)
class Example:
    """One image that excites a channel: its index in the set, the activation, and where the channel peaks."""

    index: int
    value: float  # the spatial mean or the spatial max of the channel on this image
    position: tuple[int, int]  # (row, column) of the channel's maximum on its H x W map
    map_size: tuple[int, int]  # the module's map, H x W

    def box(self, size: int) -> tuple[float, float, float, float]:
        """The map cell of the maximum in input pixels of a ``size`` x ``size`` image: (x0, y0, x1, y1)."""
        (r, c), (h, w) = self.position, self.map_size
        return c * size / w, r * size / h, (c + 1) * size / w, (r + 1) * size / h

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "value": self.value, "position": list(self.position), "map_size": list(self.map_size),
        }


@dataclass(frozen=True)
class ExampleIndex:
    """The top-k images of every channel, by spatial mean and by spatial max (rows: :func:`module_rows`)."""

    images: int  # size of the set
    data: str  # the set, in words
    map_sizes: dict[str, tuple[int, int]]  # module -> H, W of its output
    mean_index: np.ndarray  # CHANNELS x k, best first; ties go to the lower image index
    mean_value: np.ndarray
    max_index: np.ndarray
    max_value: np.ndarray
    max_position: np.ndarray  # CHANNELS x k: row * W + column of the maximum
    mean_position: np.ndarray  # CHANNELS x k: the same for the images ranked by mean

    @property
    def k(self) -> int:
        return int(self.mean_index.shape[1])

    @staticmethod
    def row(target: ChannelTarget) -> int:
        """The index row of a channel."""
        if target.channel is None:
            raise ValueError(f"{target.name} is a branch; dataset examples belong to one channel")
        return _ROWS[target.module][0] + target.offset + target.channel

    def examples(self, target: ChannelTarget, by: Ranking = "mean") -> list[Example]:
        """The channel's best images, best first, ranked by spatial ``mean`` or spatial ``max``."""
        if by not in ("mean", "max"):
            raise ValueError(f"by must be 'mean' or 'max', got {by!r}")
        r = self.row(target)
        index, value = (self.mean_index, self.mean_value) if by == "mean" else (self.max_index, self.max_value)
        position = self.mean_position if by == "mean" else self.max_position
        h, w = self.map_sizes[target.module]
        return [
            Example(int(i), float(v), divmod(int(p), w), (h, w))
            for i, v, p in zip(index[r], value[r], position[r])
        ]

    def to_dict(self, target: ChannelTarget | None = None) -> dict[str, Any]:
        """The index's summary, and a channel's examples both ways when ``target`` is given."""
        out: dict[str, Any] = {"images": self.images, "data": self.data, "k": self.k, "channels": CHANNELS}
        if target is not None:
            out["channel"] = target.name
            out["by_mean"] = [e.to_dict() for e in self.examples(target, "mean")]
            out["by_max"] = [e.to_dict() for e in self.examples(target, "max")]
        return out

    def to_arrays(self, *, compact: bool = False) -> dict[str, np.ndarray]:
        """Plain arrays for a cache file; ``compact`` stores values as float16 and indices as uint16 where they fit."""
        index_type = np.uint16 if compact and self.images <= np.iinfo(np.uint16).max else np.int32
        value_type = np.float16 if compact else np.float32
        sizes = np.array([self.map_sizes[m] for m in INCEPTION_MODULES], dtype=np.int32)
        return {
            "images": np.array(self.images),
            "data": np.array(self.data),
            "map_sizes": sizes,
            "mean_index": self.mean_index.astype(index_type),
            "mean_value": self.mean_value.astype(value_type),
            "mean_position": self.mean_position.astype(np.uint16),
            "max_index": self.max_index.astype(index_type),
            "max_value": self.max_value.astype(value_type),
            "max_position": self.max_position.astype(np.uint16),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> ExampleIndex:
        sizes = {m: (int(h), int(w)) for m, (h, w) in zip(INCEPTION_MODULES, a["map_sizes"])}
        integers = ("mean_index", "max_index", "mean_position", "max_position")
        as_int = {n: np.asarray(a[n], dtype=np.int64) for n in integers}
        return cls(
            images=int(a["images"]),
            data=str(a["data"]),
            map_sizes=sizes,
            mean_value=np.asarray(a["mean_value"], dtype=np.float32),
            max_value=np.asarray(a["max_value"], dtype=np.float32),
            **as_int,
        )


class _TopK:
    """A running top-k per column (channel) of values with their image index and a payload, best first.

    Batches arrive in image order, and a stable descending sort keeps the earlier of equal
    values first, so ties always go to the lower image index: the result does not depend on
    the batch size.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.value = torch.empty(0, CHANNELS)
        self.index = torch.empty(0, CHANNELS, dtype=torch.long)
        self.position = torch.empty(0, CHANNELS, dtype=torch.long)

    def add(self, value: Tensor, index: Tensor, position: Tensor) -> None:
        """``value`` and ``position`` are B x CHANNELS; ``index`` the B image indices."""
        value = torch.cat([self.value, value])
        index = torch.cat([self.index, index[:, None].expand(-1, CHANNELS)])
        position = torch.cat([self.position, position])
        order = torch.sort(value, dim=0, descending=True, stable=True).indices[: self.k]
        self.value, self.index = value.gather(0, order), index.gather(0, order)
        self.position = position.gather(0, order)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CHANNELS x k arrays: index, value, position."""
        return self.index.T.numpy(), self.value.T.numpy(), self.position.T.numpy()


def build_index(
    loaded: LoadedModel, data: LabelledImages, *, k: int = K, batch_size: int | None = None,
    progress: Progress | None = None,
) -> ExampleIndex:
    """One pass of ``data`` through ``loaded``'s network: every channel's top-``k`` images by mean and by max.

    The model is taken per batch (:func:`gnet.guard.exclusive`), so other users of a shared model
    wait one batch at most. Memory: one batch of the nine modules' outputs, and k + batch rows
    per channel. ``progress`` gets the fraction of images done.
    """
    net = loaded.net
    modules = net.inception_modules()
    batch_size = batch_size or batch_size_for(loaded.card.input_size)
    by_mean, by_max = _TopK(k), _TopK(k)
    sizes: dict[str, tuple[int, int]] = {}
    for x, _, indices in data.batches(batch_size):
        with exclusive(net, training=False), torch.inference_mode(), capture(net, modules) as store:
            net(x.to(loaded.device))
            means, maxes, argmaxes = [], [], []
            for name in INCEPTION_MODULES:
                out = store[name]  # B x C x H x W
                sizes[name] = (int(out.shape[2]), int(out.shape[3]))
                flat = out.flatten(2).float()
                means.append(flat.mean(2))
                peak = flat.max(2)
                maxes.append(peak.values)
                argmaxes.append(peak.indices)
            mean, peak_value, peak_position = (torch.cat(t, 1).cpu() for t in (means, maxes, argmaxes))
        by_mean.add(mean, indices, peak_position)
        by_max.add(peak_value, indices, peak_position)
        if progress is not None:
            progress(int(indices[-1] + 1) / len(data))
    mean_index, mean_value, mean_position = by_mean.arrays()
    max_index, max_value, max_position = by_max.arrays()
    return ExampleIndex(
        images=len(data), data=data.name, map_sizes=sizes,
        mean_index=mean_index, mean_value=mean_value, mean_position=mean_position,
        max_index=max_index, max_value=max_value, max_position=max_position,
    )


def example_index(
    loaded: LoadedModel, data: LabelledImages | None = None, *, build: bool = True, progress: Progress | None = None
) -> ExampleIndex | None:
    """The dataset-example index of ``loaded`` over ``data``.

    Without ``data``: :func:`gnet.inspect.evaluation.evaluation_set` (the Fashion-MNIST test set for the
    bundled net, the samples for other weights).

    Shipped for the bundled weights and the full test set (used only when the card's weights
    hash and data match); otherwise read from the disk cache, or built (with ``progress``) and
    cached; with ``build=False``, None instead of building. Without ``data`` and without
    Fashion-MNIST installed, :class:`~gnet.errors.DatasetError` says what to install.
    """
    if data is None:
        data = evaluation_set(loaded)
    compute = (lambda: build_index(loaded, data, progress=progress).to_arrays()) if build else None
    found = stored_or_built(ASSET, {"weights": loaded.weights_hash, **data.key, "k": K}, compute)
    return None if found is None else ExampleIndex.from_arrays(found[0])
