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
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

import gnet
from gnet.model import HEADS
from gnet.attributions import Attribution, attribute
from gnet.flops import CostRow, to_frame
from gnet.gradients import compare_variants
from gnet.images import image_digest
from gnet.runs import RecordedRuns, load_runs, read_grad_log
from gnet.samples import Sample, sample_images
from gnet.train import TrainConfig, train

__all__ = [
    "HEADS",
    "LIVE_MAX_STEPS",
    "AttributionRequest",
    "Bottleneck",
    "DecodedImage",
    "agreement_matrix",
    "analysis",
    "attribution",
    "batch_predictions",
    "bottleneck",
    "bottleneck_cost",
    "checkpoint_file",
    "cost_table",
    "decode_bytes",
    "decode_sample",
    "describe_preprocessing",
    "device_name",
    "LiveRun",
    "LiveRunRequest",
    "head_accuracy",
    "head_summary",
    "live_comparison",
    "model",
    "paper_comparison",
    "recorded_runs",
    "samples",
    "stage_summary",
    "stages",
    "train_live",
]

_ATTRIBUTIONS_KEPT = 64  # attribution results kept in memory across sessions
LIVE_MAX_STEPS = 100  # a live run stays under a minute or so on a shared CPU
LIVE_CHUNK = 5  # steps between progress updates (and chances to stop) of a live run
LIVE_LOG_EVERY = 5  # steps between gradient-log lines of a live run
LIVE_EVAL_IMAGES = 200  # test images a finished live run is evaluated on


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
    folder.mkdir(exist_ok=True)
    path = folder / f"upload-{digest}.pt"
    _write_atomically(path, _data)
    return str(path)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it to ``path`` (atomic on one file system)."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def describe_preprocessing(preprocessing: object) -> str:
    """A model card's preprocessing in words.

    ImageNet cards carry a sentence (kept as it is); cards written by ``gnet.train`` carry a
    dict (grayscale, resize, mean, std, channels, invert), which becomes a short list.
    """
    if not isinstance(preprocessing, dict):
        return str(preprocessing)
    pre = dict(preprocessing)
    parts = []
    if pre.pop("grayscale", False):
        parts.append("grayscale")
    if "resize" in pre:
        parts.append(f"resize {pre.pop('resize')}")
    if "mean" in pre or "std" in pre:
        parts.append(f"mean {_channel_values(pre.pop('mean', []))} / std {_channel_values(pre.pop('std', []))}")
    if "channels" in pre:
        parts.append(f"channels: {pre.pop('channels')}")
    invert = pre.pop("invert", None)
    parts.extend(f"{key}: {value}" for key, value in pre.items())
    if invert not in (None, False, "none"):
        parts.append(f"invert {invert}")
    return ", ".join(parts) or "none recorded"


def _channel_values(values: object) -> str:
    """Per-channel numbers, written once when every channel has the same one."""
    numbers = [float(v) for v in values] if isinstance(values, (list, tuple)) else [float(values)]
    if not numbers:
        return "?"
    if len(set(numbers)) == 1:
        return f"{numbers[0]:.3g}"
    return "(" + ", ".join(f"{v:.3g}" for v in numbers) + ")"


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
    """One row per head: top-1, entropy, agreement with and KL divergence to the main head."""
    result = analysis(weights, device, digest, _image)
    rows = []
    for name, head in result.heads.items():
        rows.append(
            {
                "head": name,
                "top1": head.top[0].label,
                "top1_prob": head.top[0].prob,
                "entropy_nats": head.entropy,
                "agrees_with_main": head.agrees_with_main,
                "kl_to_main_nats": head.kl_to_main,
                "trained": head.trained,
            }
        )
    return pd.DataFrame(rows)


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


def agreement_matrix(batch: pd.DataFrame) -> pd.DataFrame:
    """Fraction of samples on which two heads pick the same top-1 class (heads x heads)."""
    labels = {h: batch[f"{h}_label"] for h in HEADS}
    return pd.DataFrame(
        [[float((labels[a] == labels[b]).mean()) if len(batch) else np.nan for b in HEADS] for a in HEADS],
        index=list(HEADS),
        columns=list(HEADS),
    )


def head_accuracy(batch: pd.DataFrame) -> pd.DataFrame:
    """Per head: top-1 accuracy over the samples whose true class this model knows."""
    known = batch[batch["true_label"].notna()]
    return pd.DataFrame(
        {
            "head": list(HEADS),
            "labelled_samples": len(known),
            "accuracy": [float((known[f"{h}_label"] == known["true_label"]).mean()) if len(known) else np.nan for h in HEADS],
        }
    )


# ---------------------------------------------------------------- cost


@st.cache_data(max_entries=16, show_spinner="Counting operations...")
def cost_table(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """Per-layer cost (gnet.flops) as a table, in forward order (raises ValueError if too small)."""
    frame = to_frame(gnet.flops(model(weights, device).net, input_size))
    frame["out_shape"] = frame["out_shape"].map(lambda s: " x ".join(map(str, s)))
    frame.insert(0, "depth", range(len(frame)))
    return frame


@dataclass(frozen=True)
class Bottleneck:
    """What the 1x1 reduction saves in one Inception module's 5x5 branch (multiply-adds, one image)."""

    module: str
    kernel: int  # the branch's kxk kernel: 5 in the paper, 3 in torchvision (pytorch/vision#906)
    in_channels: int  # the module's input channels
    reduce_channels: int  # the 1x1 reduction's output channels
    out_channels: int  # the branch's output channels
    height: int
    width: int
    reduce_macs: int  # the 1x1 reduction
    conv_macs: int  # the kxk convolution on the reduced channels
    direct_macs: int  # a kxk convolution straight from in_channels to out_channels, no bottleneck

    @property
    def ratio(self) -> float:
        """How many times cheaper the branch is with its bottleneck than without."""
        return self.direct_macs / (self.reduce_macs + self.conv_macs)


def bottleneck_cost(rows: list[CostRow], kernel: int, module: str = "inception3a") -> Bottleneck:
    """The 5x5 branch of ``module`` with and without its 1x1 reduction, from :func:`gnet.flops` rows.

    The kxk convolution keeps its input's height and width (it is padded), so both versions
    produce the same map; a 1x1 convolution costs in x out x H x W, which gives the module's
    input channels from the reduction's row.
    """
    by_name = {row.name: row for row in rows}
    reduce, conv = by_name[f"{module}.5x5.reduce"], by_name[f"{module}.5x5.conv"]
    reduced, height, width = reduce.out_shape
    out_channels = conv.out_shape[0]
    in_channels = reduce.macs // (reduced * height * width)
    return Bottleneck(
        module=module, kernel=kernel, in_channels=in_channels, reduce_channels=reduced, out_channels=out_channels,
        height=height, width=width, reduce_macs=reduce.macs, conv_macs=conv.macs,
        direct_macs=kernel * kernel * in_channels * out_channels * height * width,
    )


@st.cache_data(max_entries=16, show_spinner=False)
def bottleneck(weights: str, device: str, input_size: int) -> Bottleneck:
    """:func:`bottleneck_cost` of inception3a in the loaded network, for one ``input_size`` px image."""
    net = model(weights, device).net
    return bottleneck_cost(gnet.flops(net, input_size), net.config.branch5x5_kernel)


@st.cache_data(max_entries=16, show_spinner=False)
def paper_comparison(weights: str, device: str, input_size: int) -> pd.DataFrame:
    """The paper's Table 1 next to this net's computed values, with notes on differences."""
    return gnet.paper_table(model(weights, device).net, input_size)


def _stage_of(module: str, name: str) -> tuple[str, str]:
    """(stage, kind) of one cost row: the block it belongs to in the diagram."""
    if module.startswith("inception"):
        return module, "inception"
    if module in ("aux1", "aux2"):
        return module, "aux"
    if module == "pool":
        return name, "pool"
    if module == "head":
        return ("avgpool", "pool") if name == "avgpool" else ("classifier", "classifier")
    return "stem", "stem"


def stage_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Cost rows (from :func:`cost_table`) grouped into the diagram's blocks, in forward order.

    Columns: stage, kind (stem, inception, pool, aux, classifier), out_shape, params, flops.
    An Inception block's output is its branches' outputs concatenated along channels.
    """
    stages: dict[str, dict] = {}
    for row in rows.itertuples(index=False):
        stage, kind = _stage_of(row.module, row.name)
        entry = stages.setdefault(stage, {"stage": stage, "kind": kind, "params": 0, "flops": 0, "branch_out": {}})
        entry["params"] += int(row.params)
        entry["flops"] += int(row.flops)
        entry["out_shape"] = row.out_shape
        if row.branch:
            entry["branch_out"][row.branch] = row.out_shape
    for entry in stages.values():
        outs = entry.pop("branch_out")
        if outs:
            shapes = [tuple(int(v) for v in s.split(" x ")) for s in outs.values()]
            entry["out_shape"] = " x ".join(map(str, (sum(s[0] for s in shapes), *shapes[0][1:])))
    return pd.DataFrame(list(stages.values()), columns=["stage", "kind", "out_shape", "params", "flops"])


@st.cache_data(max_entries=16, show_spinner=False)
def stages(weights: str, device: str, input_size: int) -> pd.DataFrame:
    return stage_summary(cost_table(weights, device, input_size))


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


@dataclass(frozen=True)
class LiveRunRequest:
    """A short live training run on Fashion-MNIST (the form on the Gradients page)."""

    batch_norm: bool = False
    aux: bool = True
    init: str = "trunc_normal"
    steps: int = 30
    batch_size: int = 16
    input_size: int = 64

    @property
    def name(self) -> str:
        """Named like the recorded runs: ``nobn_aux_trunc_normal``."""
        return f"{'bn' if self.batch_norm else 'nobn'}_{'aux' if self.aux else 'noaux'}_{self.init}"

    def config(self, out_dir: str) -> TrainConfig:
        """The recorded runs' settings, smaller; torch's thread count is left alone (it is process-wide)."""
        return TrainConfig(
            input_size=self.input_size, epochs=1, max_steps=self.steps, batch_size=self.batch_size, aux=self.aux,
            batch_norm=self.batch_norm, branch5x5_kernel=5, init=self.init, out_dir=out_dir,
            grad_log_every=LIVE_LOG_EVERY, checkpoint_every=0, num_threads=None, eval_limit=LIVE_EVAL_IMAGES,
            command="dashboard: Gradients page, live run",
        )


@dataclass(frozen=True)
class LiveRun:
    """A live run so far: its gradient log as tables and, once finished, the test accuracy."""

    request: LiveRunRequest
    step: int
    grad_norms: pd.DataFrame  # run, step, layer, depth, kind, norm (gnet.runs.read_grad_log)
    losses: pd.DataFrame  # run, step, head, loss
    accuracy: dict[str, float] | None  # per head on the first LIVE_EVAL_IMAGES test images; None until the end
    eval_split: str  # what the accuracy is measured on, e.g. "test (200 images)"
    wall_time_s: float


def train_live(
    request: LiveRunRequest, on_chunk: Callable[[LiveRun], bool], *, chunk: int = LIVE_CHUNK
) -> LiveRun:
    """Train ``request`` in one gnet.train run, reporting every ``chunk`` steps.

    Every ``chunk`` steps, ``on_chunk`` gets the run so far and returns whether to go on: it
    draws the progress and checks the session's stop flag. Returns the run as it ended
    (``accuracy`` None if stopped early). The run's files live in a temporary folder that is
    removed however the run ends. Raises gnet.DatasetError when Fashion-MNIST is not installed.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gnet-live-") as out:
        log = Path(out) / "grad_log.jsonl"

        def on_step(step: int, total: int) -> bool:
            if step % chunk and step != total:
                return True
            norms, losses = read_grad_log(log, request.name)
            return on_chunk(LiveRun(request, step, norms, losses, None, "", time.monotonic() - started))

        result = train(request.config(out), progress=False, on_step=on_step)
        norms, losses = read_grad_log(log, request.name)
        return LiveRun(
            request, result["steps"], norms, losses, result["accuracy"], result["eval_split"], result["wall_time_s"]
        )


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

    Not an ``st.cache_*`` function because the computation reports progress to a bar
    drawn outside it, which Streamlit's cache replay cannot reproduce.
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
