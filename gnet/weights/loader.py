"""Weight sources as data, and the one loader that turns a source into a ready model.

Sources (torchvision's ``Weights`` enum style: each carries its preprocessing, its
class names and a model card):

- ``imagenet``: torchvision's ``GoogLeNet_Weights.IMAGENET1K_V1`` from the torch hub
  cache (downloaded when a network is there). Its auxiliary heads are NOT trained.
- ``bundled``: the Fashion-MNIST checkpoint shipped in ``assets/``; all three heads trained.
- ``random``: seeded initialisation, for gradient studies.
- ``auto``: ``imagenet`` if its file is already cached, else ``bundled``.
- any file path: a checkpoint read with ``torch.load(..., weights_only=True)``.

Any of them may end in ``+aux=PATH``: the auxiliary heads written by ``gnet distill-aux``
(:mod:`gnet.weights.overlay`) are stacked on the weights they were distilled on.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torchvision.models import GoogLeNet_Weights

from ..data.preprocess import GrayscalePreprocess, colour_transform
from ..device import memory_format, resolve_device
from ..errors import CheckpointError, WeightsError, WeightsNotFoundError
from ..net.layers import HEADS
from ..net.model import MAX_INPUT_SIZE, MIN_INPUT_SIZE, GoogLeNet, GoogLeNetConfig
from ..storage import ASSETS_DIR
from .card import LoadedModel, ModelCard
from .checkpoint import load_checkpoint
from .sources import SOURCES, split_overlay

__all__ = [
    "ASSETS_DIR",
    "BUNDLED_CARD",
    "BUNDLED_WEIGHTS",
    "SOURCES",
    "imagenet_cache_path",
    "load",
    "load_checkpoint",
    "resolve_source",
]

BUNDLED_WEIGHTS = ASSETS_DIR / "fashion_mnist_googlenet.pt"
BUNDLED_CARD = ASSETS_DIR / "fashion_mnist_googlenet.json"
_MAX_CLASS_NAME = 200  # characters in one class name of a model card
OFFLINE_ENV = "GNET_OFFLINE"  # set to 1 to never try a download
_IMAGENET = GoogLeNet_Weights.IMAGENET1K_V1


# ---------------------------------------------------------------- sources


def imagenet_cache_path() -> Path:
    """Where torch hub keeps (and we look for) torchvision's ImageNet GoogLeNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(_IMAGENET.url).path).name


def _imagenet_card(source: str) -> ModelCard:
    metrics = _IMAGENET.meta.get("_metrics", {}).get("ImageNet-1K", {})
    t = _IMAGENET.transforms()
    return ModelCard(
        name="GoogLeNet (torchvision, ImageNet-1K)",
        source=source,
        classes=list(_IMAGENET.meta["categories"]),
        input_size=int(t.crop_size[0]),
        normalization={"mean": list(t.mean), "std": list(t.std)},
        heads_trained={"main": True, "aux1": False, "aux2": False},
        accuracy={"main": {"top1": metrics.get("acc@1"), "top5": metrics.get("acc@5"), "split": "ImageNet-1K val"}},
        notes=[
            "The auxiliary heads of torchvision's ImageNet GoogLeNet are NOT trained: "
            "their predictions are random and say nothing about the architecture.",
            "torchvision's '5x5' branch is a 3x3 convolution (pytorch/vision#906) and it uses batch norm.",
        ],
        details={"preprocessing": f"resize {t.resize_size[0]}, centre crop {t.crop_size[0]}, ImageNet mean/std"},
    )


def _load_imagenet(download: bool) -> tuple[GoogLeNet, ModelCard, Callable]:
    path = imagenet_cache_path()
    if not path.exists():
        if not download or os.environ.get(OFFLINE_ENV):
            raise WeightsNotFoundError(
                f"ImageNet weights not found: copy {path.name} into {path.parent} (the torch hub cache), "
                "or fetch it with `gnet info --weights imagenet` where a network is available."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(_IMAGENET.url, str(path), hash_prefix=None, progress=True)
        except Exception as e:  # any network failure means the same thing to the user
            raise WeightsNotFoundError(
                f"ImageNet weights could not be downloaded ({type(e).__name__}): copy {path.name} into "
                f"{path.parent} (torch hub cache) or use --weights bundled."
            ) from None
    config = GoogLeNetConfig(num_classes=1000, batch_norm=True, branch5x5_kernel=3, transform_input=True)
    net, _ = load_checkpoint(path, config=config)
    return net, _imagenet_card(f"torchvision GoogLeNet_Weights.IMAGENET1K_V1 ({path})"), _IMAGENET.transforms()


def _grayscale_transform(card: Mapping[str, Any]) -> GrayscalePreprocess:
    pre = card.get("preprocessing", {})
    # Fashion-MNIST nets invert photos automatically; a net trained on a user's own folder does not.
    invert = "auto" if str(pre.get("invert", "auto")).startswith("auto") else False
    return GrayscalePreprocess(int(card["input_size"]), float(pre["mean"][0]), float(pre["std"][0]), invert=invert)


def _card_transform(card: Mapping[str, Any]) -> Callable:
    """The preprocessing a training card records: colour (a net trained on an RGB folder) or grayscale.

    A colour net's resize is derived from its checked input size, as in training, never read from the card.
    """
    pre = card.get("preprocessing", {})
    if pre.get("colour") == "rgb":
        return colour_transform(int(card["input_size"]), pre["mean"], pre["std"])
    return _grayscale_transform(card)


def _check_card(card: Any, num_classes: int, name: str) -> None:
    """Raise CheckpointError naming the first field that makes a model card unusable with its net.

    Every field is checked against bounds before anything is allocated: a card is data from a
    stranger, and a shared server would pay for an input size of 10^6 pixels on every analysis.
    """
    if not isinstance(card, Mapping):
        raise CheckpointError(f"{name} has a model card that is not a mapping: re-export the checkpoint.")
    classes = card.get("classes")
    size = card.get("input_size")
    pre = card.get("preprocessing")
    problems = []
    if not isinstance(classes, list) or len(classes) != num_classes:
        got = len(classes) if isinstance(classes, list) else "no"
        problems.append(f"{got} class names for a {num_classes}-class head")
    elif not all(isinstance(c, str) and 0 < len(c) <= _MAX_CLASS_NAME for c in classes):
        problems.append(f"class names that are not short strings (1 to {_MAX_CLASS_NAME} characters)")
    if type(size) is not int or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        problems.append(f"input_size {size!r} (an integer from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} is needed)")
    for key in ("mean", "std"):
        values = pre.get(key) if isinstance(pre, Mapping) else None
        if not isinstance(values, list) or len(values) not in (1, 3):
            problems.append(f"preprocessing {key} {values!r} (1 or 3 numbers)")
        elif not all(isinstance(v, (int, float)) and math.isfinite(v) and (key == "mean" or v > 0) for v in values):
            problems.append(f"preprocessing {key} {values!r} (finite numbers{', above 0' if key == 'std' else ''})")
    if problems:
        raise CheckpointError(f"{name} has a model card that does not fit its weights: {problems[0]}.")


def _card_from_training(card: Mapping[str, Any], source: str) -> ModelCard:
    pre = card.get("preprocessing", {})
    known = {"name", "source", "classes", "num_classes", "input_size", "heads_trained", "accuracy", "notes"}
    return ModelCard(
        name=card.get("name", "GoogLeNet"),
        source=source,
        classes=list(card["classes"]),
        input_size=int(card["input_size"]),
        normalization={"mean": list(pre.get("mean", [])), "std": list(pre.get("std", []))},
        heads_trained=dict(card.get("heads_trained", dict.fromkeys(HEADS, True))),
        accuracy=dict(card.get("accuracy", {})),
        notes=list(card.get("notes", [])),
        details={k: v for k, v in card.items() if k not in known},
    )


def _load_bundled() -> tuple[GoogLeNet, ModelCard, Callable]:
    if not BUNDLED_WEIGHTS.exists() or not BUNDLED_CARD.exists():
        raise WeightsNotFoundError(
            f"The bundled checkpoint is absent ({BUNDLED_WEIGHTS.name} and {BUNDLED_CARD.name} in {ASSETS_DIR}): "
            "train one with `python -m gnet train --export-bundled assets/` or use --weights random."
        )
    try:
        card = json.loads(BUNDLED_CARD.read_text())
        config = GoogLeNetConfig(**card["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"The bundled model card {BUNDLED_CARD} is unreadable ({e}): restore it from git.") from None
    net, _ = load_checkpoint(BUNDLED_WEIGHTS, config=config)
    _check_card(card, config.num_classes, repr(str(BUNDLED_CARD)))
    return net, _card_from_training(card, f"bundled ({BUNDLED_WEIGHTS.name})"), _card_transform(card)


def _load_random(seed: int = 0) -> tuple[GoogLeNet, ModelCard, Callable]:
    from ..net.model import googlenet

    card = replace(
        _imagenet_card(f"random initialisation (trunc_normal std 0.01, seed {seed})"),
        name="GoogLeNet, untrained",
        heads_trained=dict.fromkeys(HEADS, False),
        accuracy={},
        notes=["Untrained weights: every head's prediction is noise. Useful for gradient studies at initialisation."],
    )
    return googlenet(seed=seed), card, _IMAGENET.transforms()


def _load_path(path: str, label: str | None = None) -> tuple[GoogLeNet, ModelCard, Callable]:
    """A checkpoint file; ``label`` is how the user named it (an upload), for messages and the card."""
    shown = label or path
    name = repr(shown)

    def check(meta: dict, config: GoogLeNetConfig) -> None:
        if not config.is_paper_design:
            raise CheckpointError(
                f"{name} is a design-lab variant ({', '.join(config.design_changes)}), while the explorer's pages read "
                "the paper's layout of Table 1: compare it with `python -m gnet design`, or load it in a script with "
                "gnet.load_checkpoint."
            )
        if "card" in meta:
            _check_card(meta["card"], config.num_classes, name)
        classes = meta.get("classes")
        if classes is not None and not (
            isinstance(classes, list) and len(classes) == config.num_classes and all(isinstance(c, str) for c in classes)
        ):
            raise CheckpointError(f"{name} lists class names that do not fit its {config.num_classes}-class head.")

    net, meta = load_checkpoint(path, label=label, check=check)
    n = net.config.num_classes
    card = meta.get("card")
    if isinstance(card, Mapping):
        model_card = _card_from_training(card, f"file {shown}")
        if meta["aux_heads_missing"]:
            model_card = replace(model_card, heads_trained={**model_card.heads_trained, "aux1": False, "aux2": False})
        return net, model_card, _card_transform(card)
    if n == 1000:
        # A bare 1000-class state dict is taken to be torchvision's ImageNet layout.
        net.config = replace(net.config, transform_input=True)
        base = _imagenet_card(f"file {shown}")
        trained = {"main": True, "aux1": not meta["aux_heads_missing"], "aux2": not meta["aux_heads_missing"]}
        return net, replace(base, name=f"GoogLeNet from {Path(shown).name}", heads_trained=trained, accuracy={}), (
            _IMAGENET.transforms()
        )
    classes = list(meta.get("classes") or [f"class {i}" for i in range(n)])
    t = _IMAGENET.transforms()
    card = ModelCard(
        name=f"GoogLeNet from {Path(shown).name}",
        source=f"file {shown}",
        classes=classes,
        input_size=224,
        normalization={"mean": list(t.mean), "std": list(t.std)},
        heads_trained={"main": True, "aux1": not meta["aux_heads_missing"], "aux2": not meta["aux_heads_missing"]},
        notes=["No model card in this file: ImageNet preprocessing is assumed and head training is unknown."],
    )
    return net, card, t


def resolve_source(weights: str) -> str:
    """``auto`` -> the concrete source it stands for; other names and paths unchanged."""
    if weights == "auto":
        return "imagenet" if imagenet_cache_path().exists() else "bundled"
    return weights


def load(
    weights: str = "auto", device: str | torch.device | None = None, *, download: bool = True, label: str | None = None
) -> LoadedModel:
    """Load a weights source (a name in :data:`SOURCES` or a checkpoint path) onto a device, in eval mode.

    A source ending in ``+aux=OVERLAY`` gets the aux heads of that overlay (:mod:`gnet.weights.overlay`) stacked on it;
    one ending in ``+labels=OVERLAY`` gets the three heads' new last layers, and answers in the overlay's classes.

    ``label`` is how messages and the card name a checkpoint file (an upload's own name) instead of its path.
    """
    from .overlay import stack, stack_labels

    dev = resolve_device(device)
    base, kind, overlay = split_overlay(str(weights))
    if overlay is not None:
        below = load(base, dev, download=download, label=label)
        return stack(below, overlay) if kind == "aux" else stack_labels(below, overlay)
    source = resolve_source(str(weights))
    if source == "imagenet":
        net, card, transform = _load_imagenet(download)
        files: tuple[Path, ...] = (imagenet_cache_path(),)
    elif source == "bundled":
        net, card, transform = _load_bundled()
        files = (BUNDLED_WEIGHTS,)
    elif source == "random":
        net, card, transform = _load_random()
        files = ()
    elif Path(source).expanduser().suffix or os.sep in source or Path(source).expanduser().exists():
        net, card, transform = _load_path(source, label)
        files = (Path(source).expanduser(),)
    else:
        raise WeightsError(f"Unknown weights {weights!r}: use one of {', '.join(SOURCES)} or a checkpoint file path.")
    return LoadedModel(
        net=net.to(dev, memory_format=memory_format(dev)).eval(), card=card, transform=transform, device=dev,
        source=source, files=files,
    )
