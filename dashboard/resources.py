"""Every computation the dashboard shows, cached: thin wrappers around ``gnet``.

- The model is loaded once per (weights, device) and shared by every session
  (``st.cache_resource``; :func:`gnet.guard.exclusive` serialises its use).
- The analysis of an image is computed once per (weights, device, image digest) and
  shared read-only, so switching pages, modules or heads never repeats a forward pass.
- Tables derived from them are plain data (``st.cache_data``).

Arguments whose names start with ``_`` are not hashed: the digest next to them is the key.
Errors a user can cause come out as :class:`gnet.GNetError`; views show their sentence.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from PIL import Image

import gnet
from dashboard import tables
from gnet.attributions import Attribution, attribute
from gnet.cost import to_frame
from gnet.earlyexit import ExitCurve, early_exits, exit_costs
from gnet.evaldata import LabelledImages
from gnet.evaldata import evaluation_set as gnet_evaluation_set
from gnet.gradients import compare_variants
from gnet.headlogits import HeadLogitSet, Progress
from gnet.headlogits import head_logits as gnet_head_logits
from gnet.headlogits import stored_logits
from gnet.headstats import Disagreement, HeadComparison, compare_heads, disagreements
from gnet.images import image_digest
from gnet.indomain import InDomain
from gnet.indomain import in_domain as gnet_in_domain
from gnet.layers import HEADS
from gnet.runs import RecordedRuns, load_runs
from gnet.samples import Sample, sample_images
from gnet.storage import atomic_write

__all__ = [
    "AttributionRequest",
    "DecodedImage",
    "analysis",
    "attribution",
    "batch_predictions",
    "bottleneck",
    "checkpoint_file",
    "cost_table",
    "data_key",
    "decode_bytes",
    "decode_sample",
    "device_name",
    "evaluation_set",
    "exit_curve",
    "gallery",
    "head_comparison",
    "head_logits",
    "head_summary",
    "in_domain",
    "live_comparison",
    "model",
    "paper_comparison",
    "recorded_runs",
    "samples",
    "stages",
    "thumbnails",
]

_ATTRIBUTIONS_KEPT = 64  # attribution results kept in memory across sessions


# ---------------------------------------------------------------- model and device


@st.cache_resource(max_entries=4, show_spinner="Loading the weights...")
def model(weights: str, device: str) -> gnet.LoadedModel:
    """The network for a weights source on a device, loaded once and shared.

    Never downloads: a page must not hang on a network that may not be there. The error
    tells the user where to put the ImageNet file (``gnet info --weights imagenet`` fetches it).
    """
    return gnet.load(weights, device, download=False)


@st.cache_resource(show_spinner=False)
def device_name(device: str) -> str:
    """The device, described with its GPU's name when there is one."""
    return gnet.describe_device(torch.device(device))


@st.cache_resource(max_entries=4, show_spinner="Saving the checkpoint...")
def checkpoint_file(file_id: str, _data: bytes) -> str:
    """An uploaded checkpoint written to a temporary file named by its content's hash.

    Other sessions (and other app processes) share the folder, so the file is written under a
    unique name and renamed into place: the hash-named file is always complete, never half written.
    """
    digest = hashlib.sha256(_data).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "gnet-checkpoints"
    return str(atomic_write(folder / f"upload-{digest}.pt", _data))


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    digest: str


@st.cache_data(show_spinner=False)
def samples() -> list[Sample]:
    """The bundled sample images, Fashion-MNIST first."""
    return sample_images()


@st.cache_resource(max_entries=32, show_spinner=False)
def decode_bytes(file_id: str, _data: bytes) -> DecodedImage:
    """Uploaded or camera bytes -> RGB image and digest (raises gnet.ImageError).

    Keyed by the upload's ``file_id`` (a fresh UUID per uploaded file or photo), so a rerun
    does not hash the whole file again.
    """
    image = gnet.load_image(_data)
    return DecodedImage(image, image_digest(image))


@st.cache_resource(max_entries=64, show_spinner=False)
def decode_sample(path: str) -> DecodedImage:
    image = gnet.load_image(Path(path))
    return DecodedImage(image, image_digest(image))


# ---------------------------------------------------------------- one image


@st.cache_resource(max_entries=32, show_spinner="Running the network on the image...")
def analysis(weights: str, device: str, digest: str, _image: Image.Image) -> gnet.Analysis:
    """Everything one forward pass reveals; shared read-only (never mutate it)."""
    return gnet.analyze(model(weights, device), _image, top=5)


@st.cache_data(max_entries=64, show_spinner=False)
def head_summary(weights: str, device: str, digest: str, _image: Image.Image) -> pd.DataFrame:
    """:func:`dashboard.tables.head_summary` of the cached analysis."""
    return tables.head_summary(analysis(weights, device, digest, _image))


# ---------------------------------------------------------------- the batch of samples


@st.cache_data(max_entries=8, show_spinner="Classifying every sample image...")
def batch_predictions(weights: str, device: str) -> pd.DataFrame:
    """Each sample's true label (when known) and each head's top-1 class and probability."""
    loaded = model(weights, device)
    found = samples()
    probs = gnet.predict(loaded, [s.path for s in found])
    rows = []
    for i, sample in enumerate(found):
        row: dict[str, object] = {"sample": sample.name, "true_label": sample.true_label(loaded.classes)}
        for head in HEADS:
            p = probs[head][i]
            row[f"{head}_label"] = loaded.classes[int(p.argmax())]
            row[f"{head}_prob"] = float(p.max())
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- cost


@st.cache_data(max_entries=16, show_spinner="Counting operations...")
def cost_table(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """Per-layer cost (gnet.flops) as a table, in forward order (raises ValueError if too small)."""
    frame = to_frame(gnet.flops(model(weights, device).net, input_size))
    frame["out_shape"] = frame["out_shape"].map(lambda s: " x ".join(map(str, s)))
    frame.insert(0, "depth", range(len(frame)))
    return frame


@st.cache_data(max_entries=16, show_spinner=False)
def bottleneck(weights: str, device: str, input_size: int) -> tables.Bottleneck:
    """:func:`dashboard.tables.bottleneck_cost` of inception3a in the loaded network, for one ``input_size`` px image."""
    net = model(weights, device).net
    return tables.bottleneck_cost(gnet.flops(net, input_size), net.config.branch5x5_kernel)


@st.cache_data(max_entries=16, show_spinner=False)
def paper_comparison(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """The paper's Table 1 next to this net's computed values, with notes on differences."""
    return gnet.paper_table(model(weights, device).net, input_size)


@st.cache_data(max_entries=16, show_spinner=False)
def stages(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """:func:`dashboard.tables.stage_summary` of the loaded network's cost table."""
    return tables.stage_summary(cost_table(weights, device, input_size))


# ---------------------------------------------------------------- gradients


@st.cache_data(show_spinner="Reading the recorded runs...")
def recorded_runs() -> RecordedRuns:
    """The recorded training runs and the comparison at initialisation (assets/runs), read once.

    Raises gnet.DatasetError naming the file when assets/runs is missing or corrupt.
    """
    return load_runs()


@st.cache_data(max_entries=64, show_spinner="Back-propagating through the nets on your image...")
def live_comparison(
    weights: str, device: str, digest: str, target: int | None, variant: str, _image: Image.Image
) -> pd.DataFrame:
    """:func:`gnet.gradients.compare_variants` on the current image, one variant per call.

    ``variant`` is ``"loaded"`` (the selected model) or an init scheme (fresh nets with and
    without batch norm, the loaded model's class count). Cached per variant, so adding one
    to the plot computes only it. ``target``: the true class, or None for each net's own
    prediction. The input is the cached preprocessed image, a batch of one.
    """
    loaded = model(weights, device)
    x = analysis(weights, device, digest, _image).input.unsqueeze(0).to(loaded.device)
    y = None if target is None else torch.tensor([target], device=loaded.device)
    if variant == "loaded":
        return compare_variants(x, y, loaded_net=loaded.net, inits=())
    return compare_variants(x, y, inits=(variant,), num_classes=len(loaded.classes))


# ---------------------------------------------------------------- attributions


@dataclass(frozen=True)
class AttributionRequest:
    """Everything that determines one attribution map (the cache key, with model and image)."""

    method: str
    head: str
    target: int
    module: str = ""
    branch: str = ""
    n_steps: int = 16
    nt_samples: int = 4


class _AttributionStore:
    """A small thread-safe LRU of attribution results shared by every session.

    Written here because ``st.cache_*`` cannot take this job: the computation reports progress
    to a bar drawn outside the cached function, and Streamlit records every element call made
    while a cached function runs to replay it later, on a container that the replaying run
    does not have.
    """

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple, Attribution] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple) -> Attribution | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple, value: Attribution) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _attribution_store() -> _AttributionStore:
    return _AttributionStore(_ATTRIBUTIONS_KEPT)


def attribution(
    weights: str,
    device: str,
    digest: str,
    image: Image.Image,
    request: AttributionRequest,
    *,
    compute: bool,
    progress: Callable[[float], None] | None = None,
) -> Attribution | None:
    """The attribution map for ``request``: from memory, or computed when ``compute`` is set."""
    key = (weights, device, digest, request)
    store = _attribution_store()
    found = store.get(key)
    if found is not None or not compute:
        return found
    loaded = model(weights, device)
    x = analysis(weights, device, digest, image).input.unsqueeze(0)
    options = {}
    if request.method == "integrated_gradients":
        options = {"n_steps": request.n_steps, "nt_samples": request.nt_samples}
    result = attribute(
        loaded,
        x,
        request.method,
        head=request.head,
        target=request.target,
        module=request.module or "inception4e",
        branch=request.branch or "3x3",
        progress=progress,
        **options,
    )
    store.put(key, result)
    return result


# ---------------------------------------------------------------- the heads over a whole set


@st.cache_resource(max_entries=4, ttl=600, show_spinner="Reading the image set...")
def evaluation_set(weights: str, device: str, folder: str | None) -> LabelledImages:
    """:func:`gnet.evaldata.evaluation_set`: ``folder``, else the Fashion-MNIST test set or the samples.

    Re-read after 10 minutes, so that a folder the user fixed is seen. Raises gnet.DatasetError.
    """
    return gnet_evaluation_set(model(weights, device), folder)


def data_key(weights: str, device: str, folder: str | None) -> str:
    """A digest of the set's :attr:`~gnet.evaldata.LabelledImages.key` (a folder's files, sizes and times):
    with the weights, it names the results below, so a changed folder is never answered from an old one."""
    key = json.dumps(evaluation_set(weights, device, folder).key, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


class _NotStored(Exception):
    """The logits must be computed: raised, not returned, because Streamlit caches return values only."""


@st.cache_resource(max_entries=4, show_spinner="Reading the heads' logits...")
def _stored_logits(weights: str, device: str, folder: str | None, key: str) -> HeadLogitSet:
    found = stored_logits(model(weights, device), evaluation_set(weights, device, folder))
    if found is None:
        raise _NotStored
    return found


def head_logits(
    weights: str, device: str, folder: str | None, key: str, progress: Progress | None = None
) -> HeadLogitSet:
    """The heads' logits over the set: kept in memory once read from the shipped file or the disk cache;
    otherwise computed, reporting ``progress`` to a bar the page draws (a cached function cannot: see
    :class:`_AttributionStore`), and written to the disk cache, where the next run finds them."""
    try:
        return _stored_logits(weights, device, folder, key)
    except _NotStored:
        return gnet_head_logits(model(weights, device), evaluation_set(weights, device, folder), progress=progress)


@st.cache_data(max_entries=8, show_spinner="Comparing the heads...")
def head_comparison(weights: str, device: str, key: str, _logits: HeadLogitSet) -> HeadComparison:
    """:func:`gnet.headstats.compare_heads` of the set's logits (weights, device and data ``key`` are the key)."""
    return compare_heads(_logits, model(weights, device).card.heads_trained)


@st.cache_data(max_entries=8, show_spinner=False)
def exit_curve(weights: str, device: str, key: str, _logits: HeadLogitSet) -> ExitCurve:
    """:func:`gnet.earlyexit.early_exits` with the loaded net's costs at its input size."""
    loaded = model(weights, device)
    size = loaded.card.input_size
    return early_exits(_logits, exit_costs(gnet.flops(loaded.net, size), size))


@st.cache_data(max_entries=8, show_spinner=False)
def gallery(weights: str, device: str, key: str, _logits: HeadLogitSet, limit: int) -> list[Disagreement]:
    """The ``limit`` largest disagreements between an aux head and main (:func:`gnet.headstats.disagreements`)."""
    return disagreements(_logits, limit=limit)


@st.cache_data(max_entries=16, show_spinner=False)
def thumbnails(
    weights: str, device: str, folder: str | None, key: str, indices: tuple[int, ...], size: int = 96
) -> list[bytes]:
    """Images ``indices`` of the set as PNGs of at most ``size`` px a side (small ones stay small; the page scales)."""
    data = evaluation_set(weights, device, folder)
    found = []
    for index in indices:
        picture = data.picture(index)
        picture.thumbnail((size, size))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        found.append(buffer.getvalue())
    return found


@st.cache_data(max_entries=256, show_spinner=False)
def in_domain(weights: str, device: str, digest: str, _image: Image.Image) -> InDomain | None:
    """:func:`gnet.indomain.in_domain` of the cached analysis; None when the weights have no calibration data."""
    loaded = model(weights, device)
    return gnet_in_domain(loaded, analysis(weights, device, digest, _image))
