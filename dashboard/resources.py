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

import atexit
import hashlib
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from PIL import Image

import gnet
from gnet.images import DISPLAY_SIDE, image_digest, preview
from gnet.layers import HEADS
from gnet.samples import Sample, sample_images
from gnet.storage import atomic_write

if TYPE_CHECKING:
    import pandas as pd

    from dashboard.tables import Bottleneck
    from gnet.attributions import Attribution
    from gnet.runs import RecordedRuns

# torch, pandas, captum and the rest of gnet are imported inside the functions that use them, and
# `gnet` loads its names lazily: the router imports this module before it draws anything, so the
# navigation and the sidebar's image appear before torch has finished loading (seconds on a busy CPU).

__all__ = [
    "AttributionRequest",
    "DecodedImage",
    "analysis",
    "attribution",
    "batch_predictions",
    "bottleneck",
    "branch_figures",
    "channel_figures",
    "checkpoint_file",
    "cost_table",
    "decode_bytes",
    "decode_sample",
    "device_name",
    "energy_figure",
    "head_summary",
    "live_comparison",
    "model",
    "table1",
    "recorded_runs",
    "samples",
    "seconds_per_pass",
    "stages",
]

# Every cache here outlives a session and is shared by all of them, so each has a bound, set here
# and nowhere else (README, "Bounded by design", lists them). Entries also expire after TTL_S
# seconds, so an idle server gives its memory back.
TTL_S = 3600
MODELS_KEPT = 3  # loaded weights (ImageNet's GoogLeNet is ~50 MB on the device)
DECODED_KEPT = 32  # decoded images, each at most DISPLAY_SIDE^2 x 3 bytes (3 MiB): 96 MiB at most
ANALYSES_KEPT = 24  # one forward pass's activations: ~0.4 MB at 64 px, ~15 MB at 224 px
TABLES_KEPT = 64  # small derived tables (head summaries, gradient tables, costs)
FIGURES_KEPT = 64  # plotly figures of a module's branches (one image, one module: ~50 KB)
ATTRIBUTIONS_KEPT = 32  # attribution heatmaps (input-sized float32 maps, small)
UPLOADS_MAX_BYTES = 256 << 20  # uploaded checkpoint files on disk (the upload limit is 64 MB each)
ATTRIBUTION_BUDGET_S = 60.0  # the longest one attribution request may run, by this machine's own measurement
CHANNEL_RESULTS_KEPT = 64  # visualizations (one input-sized image each), example indexes (~2 MB), importance tables
ABLATIONS_KEPT = 64  # one image's three heads with some knock-outs (a few class probabilities)
SETS_KEPT = 2  # labelled image sets (the Fashion-MNIST test set: 10,000 28x28 images, 8 MB)
SET_TTL_S = 600  # a set is listed again after 10 minutes, so a folder the user fixed is seen
LOGIT_SETS_KEPT = 4  # the heads' logits over a set: 3 x images x classes float32 (1.2 MB for the test set)
SET_RESULTS_KEPT = 8  # comparisons, early-exit curves, galleries and their thumbnails (small), per weights and set


_UPLOADS_LOCK = threading.Lock()


# ---------------------------------------------------------------- model and device


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

    from gnet.attributions import time_forward_backward

    loaded = model(weights, device)
    size = loaded.card.input_size
    return time_forward_backward(loaded.net, torch.zeros(1, 3, size, size, device=loaded.device))


@st.cache_resource(max_entries=8, show_spinner=False)
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


@st.cache_resource(max_entries=64, ttl=TTL_S, show_spinner=False)
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


# ---------------------------------------------------------------- images


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


# ---------------------------------------------------------------- one image


@st.cache_resource(max_entries=ANALYSES_KEPT, ttl=TTL_S, show_spinner="Running the network on the image...")
def analysis(weights: str, device: str, digest: str, _image: Image.Image) -> gnet.Analysis:
    """Everything one forward pass reveals; shared read-only (never mutate it)."""
    return gnet.analyze(model(weights, device), _image, top=5)


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner="Drawing the feature maps...")
def branch_figures(weights: str, device: str, digest: str, module: str, _image: Image.Image) -> dict:
    """{branch: (grid of its most active maps, its mean map over the image)} for one module of one analysis.

    Shared read-only (never mutate them): building plotly figures costs far more server time
    than the forward pass, and a page revisit or another widget's change should not pay it again.
    """
    from dashboard import charts

    result = analysis(weights, device, digest, _image)
    return {
        branch: (
            charts.feature_grid(stats.activation[stats.top_channels].numpy(), stats.top_channels),
            charts.overlay(result.image, stats.activation.mean(0).numpy(), f"mean of {branch} over the image"),
        )
        for branch, stats in result.modules[module].branches.items()
    }


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner=False)
def channel_figures(weights: str, device: str, digest: str, point: str, _image: Image.Image) -> tuple:
    """(the channel's map, the map over the image) for ``point`` = "inception4c.5x5:12", shared read-only."""
    from dashboard import charts
    from gnet.layers import parse_channel

    target = parse_channel(point)
    result = analysis(weights, device, digest, _image)
    activation = result.modules[target.module].branches[target.branch].activation[target.channel].numpy()
    return (
        charts.channel_map(activation, f"{target.module}.{target.branch} channel {target.channel}", height=340),
        charts.overlay(result.image, activation, "on the image", height=340),
    )


@st.cache_resource(max_entries=FIGURES_KEPT, ttl=TTL_S, show_spinner=False)
def energy_figure(weights: str, device: str, digest: str, _image: Image.Image):
    """The energy-share chart of every module's branches for one analysis, shared read-only."""
    from dashboard import charts, tables

    return charts.energy_shares(tables.branch_energy(analysis(weights, device, digest, _image)))


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def head_summary(weights: str, device: str, digest: str, _image: Image.Image) -> pd.DataFrame:
    """:func:`dashboard.tables.head_summary` of the cached analysis."""
    from dashboard import tables

    return tables.head_summary(analysis(weights, device, digest, _image))


# ---------------------------------------------------------------- the batch of samples


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Classifying every sample image...")
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
    import pandas as pd

    return pd.DataFrame(rows)


# ---------------------------------------------------------------- cost


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Counting operations...")
def cost_table(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """Per-layer cost (gnet.flops) as a table, in forward order (raises ValueError if too small)."""
    from gnet.cost import to_frame

    frame = to_frame(gnet.flops(model(weights, device).net, input_size))
    frame["out_shape"] = frame["out_shape"].map(lambda s: " x ".join(map(str, s)))
    frame.insert(0, "depth", range(len(frame)))
    return frame


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def bottleneck(weights: str, device: str, input_size: int) -> Bottleneck:
    """:func:`dashboard.tables.bottleneck_cost` of inception3a in the loaded network, for one ``input_size`` px image."""
    from dashboard import tables

    net = model(weights, device).net
    return tables.bottleneck_cost(gnet.flops(net, input_size), net.config.branch5x5_kernel)


@st.cache_data(show_spinner="Building the paper's and torchvision's layouts...")
def table1() -> pd.DataFrame:
    """The paper's Table 1 beside the paper's layout and torchvision's, both built by gnet at 224 px."""
    return gnet.table1_comparison(224)


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def stages(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """:func:`dashboard.tables.stage_summary` of the loaded network's cost table."""
    from dashboard import tables

    return tables.stage_summary(cost_table(weights, device, input_size))


# ---------------------------------------------------------------- gradients


@st.cache_data(show_spinner="Reading the recorded runs...")
def recorded_runs() -> RecordedRuns:
    """The recorded training runs and the comparison at initialisation (assets/runs), read once.

    Raises gnet.DatasetError naming the file when assets/runs is missing or corrupt.
    """
    from gnet.runs import load_runs

    return load_runs()


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner="Back-propagating through the nets on your image...")
def live_comparison(
    weights: str, device: str, digest: str, target: int | None, variant: str, _image: Image.Image
) -> pd.DataFrame:
    """:func:`gnet.gradients.compare_variants` on the current image, one variant per call.

    ``variant`` is ``"loaded"`` (the selected model) or an init scheme (fresh nets with and
    without batch norm, the loaded model's class count). Cached per variant, so adding one
    to the plot computes only it. ``target``: the true class, or None for each net's own
    prediction. The input is the cached preprocessed image, a batch of one.
    """
    import torch

    from gnet.gradients import compare_variants

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


class _SharedStore:
    """A small thread-safe LRU of results shared by every session (attributions, visualizations, indexes).

    Written here because ``st.cache_*`` cannot take this job: the computation reports progress
    to a bar drawn outside the cached function, and Streamlit records every element call made
    while a cached function runs to replay it later, on a container that the replaying run
    does not have.
    """

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _attribution_store() -> _SharedStore:
    return _SharedStore(ATTRIBUTIONS_KEPT)


def attribution(
    weights: str,
    device: str,
    digest: str,
    image: Image.Image,
    request: AttributionRequest,
    *,
    compute: bool,
    progress: Callable[[float], bool | None] | None = None,
) -> Attribution | None:
    """The attribution map for ``request``: from memory, or computed when ``compute`` is set.

    ``progress`` returning False stops Integrated Gradients (gnet.attributions.Stopped is raised).
    """
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
    from gnet.attributions import attribute

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
