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
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import gnet
from gnet.attributions import Attribution, attribute
from gnet.flops import to_frame
from gnet.images import image_digest
from gnet.samples import Sample, sample_images

__all__ = [
    "HEADS",
    "LOSSES",
    "AttributionRequest",
    "DecodedImage",
    "agreement_matrix",
    "analysis",
    "attribution",
    "batch_predictions",
    "checkpoint_file",
    "cost_table",
    "decode_bytes",
    "decode_sample",
    "device_name",
    "gradient_magnitudes",
    "head_accuracy",
    "head_summary",
    "model",
    "paper_comparison",
    "samples",
    "stage_summary",
    "stages",
]

HEADS: tuple[str, ...] = ("main", "aux1", "aux2")
AUX_WEIGHT = 0.3  # the paper adds each auxiliary loss with weight 0.3 during training
LOSSES: dict[str, str] = {
    "main": "main head",
    "aux1": "aux1 head",
    "aux2": "aux2 head",
    "total": f"training loss: main + {AUX_WEIGHT} x (aux1 + aux2)",
}
# Forward order of the network's top-level parts, auxiliary heads where they branch off.
_DEPTH_ORDER = (
    "conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "aux1", "inception4b",
    "inception4c", "inception4d", "aux2", "inception4e", "inception5a", "inception5b", "fc",
)
_ATTRIBUTIONS_KEPT = 64  # attribution results kept in memory across sessions


# ---------------------------------------------------------------- model and device


@st.cache_resource(max_entries=4, show_spinner="Loading the weights...")
def model(weights: str, device: str) -> gnet.LoadedModel:
    """The network for a weights source on a device, loaded once and shared."""
    return gnet.load(weights, device)


@st.cache_resource(show_spinner=False)
def device_name(device: str) -> str:
    """The device, described with its GPU's name when there is one."""
    return gnet.describe_device(torch.device(device))


@st.cache_resource(max_entries=4, show_spinner="Saving the checkpoint...")
def checkpoint_file(file_id: str, _data: bytes) -> str:
    """An uploaded checkpoint written to a temporary file named by its content's hash."""
    digest = hashlib.sha256(_data).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "gnet-checkpoints"
    folder.mkdir(exist_ok=True)
    path = folder / f"upload-{digest}.pt"
    if not path.exists():
        path.write_bytes(_data)
    return str(path)


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
def decode_bytes(data: bytes) -> DecodedImage:
    """Uploaded or camera bytes -> RGB image and digest (raises gnet.ImageError)."""
    image = gnet.load_image(data)
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


def _weighted_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every convolution and linear layer, in the order the forward reaches it."""
    order = {name: i for i, name in enumerate(_DEPTH_ORDER)}
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return sorted(layers, key=lambda item: order[item[0].split(".")[0]])  # sorted() is stable


@st.cache_data(max_entries=64, show_spinner="Back-propagating...")
def gradient_magnitudes(
    weights: str, device: str, digest: str, loss: str, target: int, _image: Image.Image
) -> pd.DataFrame:
    """Per layer: RMS of the weight gradient of a head's cross-entropy loss for class ``target``.

    Uses the cached preprocessed input, leaves no ``.grad`` on the shared model
    (``torch.autograd.grad``) and runs in eval mode under the model's lock.
    """
    loaded = model(weights, device)
    x = analysis(weights, device, digest, _image).input.unsqueeze(0).to(loaded.device)
    layers = _weighted_layers(loaded.net)
    params = [m.weight for _, m in layers]
    y = torch.tensor([target], device=loaded.device)
    with gnet.exclusive(loaded.net, training=False), torch.enable_grad():
        out = loaded.net(x)
        losses = {h: F.cross_entropy(getattr(out, h), y) for h in HEADS}
        losses["total"] = losses["main"] + AUX_WEIGHT * (losses["aux1"] + losses["aux2"])
        grads = torch.autograd.grad(losses[loss], params, allow_unused=True)
    rows = []
    for depth, ((name, layer), grad) in enumerate(zip(layers, grads)):
        top = name.split(".")[0]
        rows.append(
            {
                "depth": depth,
                "layer": name.removesuffix(".conv"),
                "part": "aux1" if top == "aux1" else "aux2" if top == "aux2" else "main path",
                "kind": type(layer).__name__,
                "params": layer.weight.numel(),
                "grad_rms": float(grad.float().square().mean().sqrt()) if grad is not None else np.nan,
                "weight_rms": float(layer.weight.detach().float().square().mean().sqrt()),
            }
        )
    frame = pd.DataFrame(rows)
    frame["grad_to_weight"] = frame["grad_rms"] / frame["weight_rms"]
    return frame


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
