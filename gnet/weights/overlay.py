"""Overlays: small files holding some heads' layers, stacked on the weights they belong to.

- **Aux-head overlays** hold aux1 and aux2 whole. ``gnet distill-aux`` (:mod:`gnet.heads.distill`)
  writes one; :func:`gnet.load` stacks it when the source names it: ``"imagenet+aux=aux_heads.pt"``
  (:func:`gnet.weights.sources.with_overlay`; the CLI's ``--aux-overlay PATH`` builds that string).
- **Label overlays** hold the last linear layer of all three heads for a new label set (``fc``,
  ``aux1.fc2``, ``aux2.fc2``). ``gnet retrain-heads`` (:mod:`gnet.heads.retrain`) writes one;
  ``"bundled+labels=labels.pt"`` stacks it, and the loaded model then speaks the overlay's classes.

Each overlay records the sha256 of the weights it was made on (:attr:`gnet.LoadedModel.weights_hash`)
and refuses any other weights. A stacked model's hash covers the overlay's file too, so the
order is fixed by what each overlay was made on: ``SOURCE+aux=A+labels=L`` stacks a label overlay
retrained on the distilled heads; ``+labels=`` followed by ``+aux=`` is refused (the aux overlay
was distilled on weights without the label overlay).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import CheckpointError
from ..storage import torch_save
from .checkpoint import _check_finite, read_checkpoint
from .sources import with_overlay

if TYPE_CHECKING:
    from .card import LoadedModel, ModelCard

__all__ = [
    "DISTILLED",
    "HEAD_LAST_LAYERS",
    "LABELS_FORMAT",
    "OVERLAY_FORMAT",
    "RETRAINED",
    "aux_keys",
    "distilled",
    "save_labels_overlay",
    "save_overlay",
    "stack",
    "stack_labels",
]

OVERLAY_FORMAT = "gnet-aux-overlay"
OVERLAY_VERSION = 1
DISTILLED = "distilled on a frozen trunk, after training, not trained jointly as in the paper"
RETRAINED = "last layers retrained on a frozen trunk"
LABELS_FORMAT = "gnet-labels-overlay"
# The last linear layer of each head, by its name in gnet.net.layers: what a label overlay replaces.
HEAD_LAST_LAYERS: dict[str, str] = {"main": "fc", "aux1": "aux1.fc2", "aux2": "aux2.fc2"}
_AUX = ("aux1.", "aux2.")
_HEADS_REPLACED = ("aux1", "aux2")


def aux_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of a GoogLeNet state dict that belong to the auxiliary heads."""
    return {k: v for k, v in state_dict.items() if k.startswith(_AUX)}


def save_overlay(state_dict: dict[str, torch.Tensor], card: dict[str, Any], path: Path | str) -> Path:
    """Write the aux heads (as float16: half the size, read back as float32) and their card, atomically.

    The card records the file's name, which the app shows even after an upload renamed the file.
    """
    heads = {k: v.half() if v.is_floating_point() else v for k, v in aux_keys(state_dict).items()}
    card = {**card, "file": Path(path).name}
    return torch_save({"format": OVERLAY_FORMAT, "version": OVERLAY_VERSION, "state_dict": heads, "card": card}, path)


def distilled(card: ModelCard) -> dict[str, Any] | None:
    """What a stacked overlay's card says about its aux heads, or None when they were not distilled."""
    aux = card.details.get("aux_heads")
    return aux if isinstance(aux, dict) and aux.get("how") == "distilled" else None


def _read(path: Path, kind: str = OVERLAY_FORMAT) -> dict[str, Any]:
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or obj.get("format") != kind:
        what, writer = ("an aux-head overlay", "gnet distill-aux") if kind == OVERLAY_FORMAT else (
            "a label overlay", "gnet retrain-heads")
        raise CheckpointError(f"{str(path)!r} is not {what} (no 'format': '{kind}'): give a file written by {writer}.")
    if obj.get("version") != OVERLAY_VERSION or not isinstance(obj.get("card"), dict):
        raise CheckpointError(f"{str(path)!r} is an overlay of version {obj.get('version')}; this gnet reads {OVERLAY_VERSION}.")
    return obj


def stack(loaded: LoadedModel, path: str | Path) -> LoadedModel:
    """``loaded`` with the overlay's aux heads in place of its own, and a card that says they are distilled.

    Raises :class:`CheckpointError` when the overlay belongs to other weights (its recorded
    base hash differs from ``loaded.weights_hash``) or its heads do not fit the net.
    """
    path = Path(path).expanduser()
    overlay = _read(path)
    card, name = _belongs(overlay, path, loaded, "distilled")
    expected = aux_keys(loaded.net.state_dict())
    heads = overlay["state_dict"]
    wrong = sorted(
        set(expected) ^ set(heads) | {k for k in expected.keys() & heads.keys() if expected[k].shape != heads[k].shape}
    )
    if wrong:
        raise CheckpointError(f"{name} holds aux heads that do not fit this net ({', '.join(wrong[:4])}).")
    _check_finite(heads, name)  # the same refusal of NaN/Inf as for any checkpoint
    loaded.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in heads.items()}, strict=False)
    loaded.net.to(loaded.device)
    about = {
        "how": "distilled", "overlay": str(path), "file": name, "method": DISTILLED,
        **{k: card[k] for k in ("data", "temperature", "labels_used", "held_out", "steps") if k in card},
    }
    # The base card's warning that its aux heads are untrained, and its aux accuracy, no longer hold.
    notes = [
        f"aux1 and aux2 are not the base weights' heads: they come from {name}, {DISTILLED}; "
        "the other notes describe the base weights.",
        *(n for n in loaded.card.notes if "NOT trained" not in n),
    ]
    new_card = replace(
        loaded.card,
        name=f"{loaded.card.name} + distilled aux heads",
        heads_trained={**loaded.card.heads_trained, "aux1": True, "aux2": True},
        accuracy={k: v for k, v in loaded.card.accuracy.items() if k not in _HEADS_REPLACED},
        notes=notes,
        details={**loaded.card.details, "aux_heads": about},
    )
    return replace(
        loaded, card=new_card, source=with_overlay(loaded.source, path), files=(*loaded.files, path)
    )


def _belongs(overlay: dict[str, Any], path: Path, loaded: LoadedModel, made: str) -> tuple[dict[str, Any], str]:
    """The overlay's card and name, once its recorded base hash is ``loaded``'s; else one sentence."""
    card = overlay["card"]
    base = str(card.get("base_weights_sha256", ""))
    name = str(card.get("file") or path.name)
    if base != loaded.weights_hash:
        raise CheckpointError(
            f"{name} was {made} on other weights ({card.get('base_name', 'unknown')}, sha256 {base[:12]}) "
            f"than {loaded.card.name} (sha256 {loaded.weights_hash[:12]}): stack it on the weights it was {made} on."
        )
    return card, name


def save_labels_overlay(state_dict: dict[str, torch.Tensor], card: dict[str, Any], path: Path | str) -> Path:
    """Write the three heads' new last layers (float32: they are small) and their card, atomically."""
    card = {**card, "file": Path(path).name}
    layers = {k: v.detach().float().cpu().contiguous() for k, v in state_dict.items()}
    return torch_save({"format": LABELS_FORMAT, "version": OVERLAY_VERSION, "state_dict": layers, "card": card}, path)


def stack_labels(loaded: LoadedModel, path: str | Path) -> LoadedModel:
    """``loaded`` answering in the label overlay's classes: its three last layers replaced, its card saying so.

    Raises :class:`CheckpointError` when the overlay belongs to other weights, or its layers do not
    fit this trunk or disagree with its class list.
    """
    from torch import nn

    path = Path(path).expanduser()
    overlay = _read(path, LABELS_FORMAT)
    card, name = _belongs(overlay, path, loaded, "retrained")
    classes = [str(c) for c in card.get("classes", [])]
    layers = overlay["state_dict"]
    net = loaded.net
    new: dict[str, nn.Linear] = {}
    for head, layer in HEAD_LAST_LAYERS.items():
        weight, bias = layers.get(f"{layer}.weight"), layers.get(f"{layer}.bias")
        old = net.get_submodule(layer)
        if weight is None or bias is None or weight.shape != (len(classes), old.in_features) or bias.shape != (len(classes),):
            raise CheckpointError(f"{name} holds a {layer} that does not fit this net and its {len(classes)} classes.")
        new[layer] = nn.Linear(old.in_features, len(classes)).to(loaded.device)
        with torch.no_grad():
            new[layer].weight.copy_(weight)
            new[layer].bias.copy_(bias)
    _check_finite(layers, name)
    net.fc = new["fc"]
    net.aux1.fc2, net.aux2.fc2 = new["aux1.fc2"], new["aux2.fc2"]
    net.config = replace(net.config, num_classes=len(classes))
    held = card.get("held_out", {})
    about = {"how": "retrained", "overlay": str(path), "file": name, "method": RETRAINED,
             **{k: card[k] for k in ("data", "held_out", "fit") if k in card}}
    new_card = replace(
        loaded.card,
        name=f"{loaded.card.name} + heads for {len(classes)} new classes",
        classes=classes,
        heads_trained={head: True for head in HEAD_LAST_LAYERS},
        accuracy={**held.get("accuracy", {}), "split": f"held out from {card.get('data', {}).get('name', name)}"},
        notes=[f"The three heads' last layers come from {name}: {RETRAINED}, on {len(classes)} classes of the user's; "
               "the trunk and the rest of each head are the base weights'."],
        details={**loaded.card.details, "labels": about},
    )
    return replace(loaded, card=new_card, source=with_overlay(loaded.source, path, "labels"),
                   files=(*loaded.files, path))
