"""Auxiliary-head overlays: a small file holding only aux1 and aux2, stacked on the weights they belong to.

``gnet distill-aux`` (:mod:`gnet.heads.distill`) writes one; :func:`gnet.load` stacks it when the
weights source names it: ``"imagenet+aux=aux_heads.pt"`` (:func:`gnet.weights.sources.with_overlay`;
the CLI's ``--aux-overlay PATH`` builds that string). An overlay records the sha256 of the
weights it was distilled on (:attr:`gnet.LoadedModel.weights_hash`) and refuses any other weights.
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

__all__ = ["DISTILLED", "OVERLAY_FORMAT", "aux_keys", "distilled", "save_overlay", "stack"]

OVERLAY_FORMAT = "gnet-aux-overlay"
OVERLAY_VERSION = 1
DISTILLED = "distilled on a frozen trunk, after training, not trained jointly as in the paper"
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


def _read(path: Path) -> dict[str, Any]:
    obj = read_checkpoint(path)
    if not isinstance(obj, dict) or obj.get("format") != OVERLAY_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not an aux-head overlay (no 'format': '{OVERLAY_FORMAT}'): "
            "give a file written by gnet distill-aux."
        )
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
    card = overlay["card"]
    base = str(card.get("base_weights_sha256", ""))
    name = str(card.get("file") or path.name)
    if base != loaded.weights_hash:
        raise CheckpointError(
            f"{name} was distilled on other weights ({card.get('base_name', 'unknown')}, sha256 {base[:12]}) "
            f"than {loaded.card.name} (sha256 {loaded.weights_hash[:12]}): stack it on the weights it was distilled on."
        )
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
