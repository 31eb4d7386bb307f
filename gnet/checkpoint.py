"""Checkpoint files: reading any GoogLeNet state dict safely, and the trainer's resumable format.

Every file is read with ``torch.load(..., weights_only=True)``, so a pickle that would run
code is refused before anything runs, and every way a file can fail to be a usable GoogLeNet
checkpoint becomes a :class:`~gnet.errors.CheckpointError` with one sentence. Files are
written through :func:`gnet.storage.torch_save`, so an interrupted save never leaves a
broken checkpoint.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError, WeightsNotFoundError
from .model import GoogLeNet, GoogLeNetConfig
from .storage import torch_save

__all__ = [
    "TRAINING_FORMAT",
    "TRAINING_VERSION",
    "load_checkpoint",
    "load_training_checkpoint",
    "read_checkpoint",
    "save_training_checkpoint",
]

TRAINING_FORMAT = "gnet-checkpoint"
TRAINING_VERSION = 1
_MAX_LISTED = 8  # keys listed per problem in a mismatch error


def read_checkpoint(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, every failure turned into a named error."""
    if not path.exists():
        raise WeightsNotFoundError(f"Checkpoint file {str(path)!r} does not exist: check the path.")
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a folder, not a checkpoint file: pass the .pt/.pth file inside it.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "Weights only" in str(e):
            raise CheckpointError(
                f"{str(path)!r} contains pickled Python objects, not just tensors, so it was not loaded "
                "(it could run code): re-save it with torch.save(model.state_dict(), path)."
            ) from None
        raise CheckpointError(f"{str(path)!r} is not a PyTorch checkpoint ({e}).") from None
    except Exception as e:  # torch.load raises anything from KeyError to RuntimeError on garbage input
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch checkpoint ({reason}): pass a file saved with torch.save."
        ) from None


def _state_dict_of(obj: Any, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{str(path)!r} holds no state dict of tensors: save it with torch.save(model.state_dict(), path)."
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _infer_config(sd: Mapping[str, Tensor], path: Path) -> GoogLeNetConfig:
    """The variant a bare state dict was saved from, read off its keys and shapes."""
    if "fc.weight" not in sd or "conv1.conv.weight" not in sd:
        raise CheckpointError(
            f"{str(path)!r} is not a GoogLeNet checkpoint: it has no 'conv1.conv.weight' / 'fc.weight' "
            f"(first keys: {', '.join(list(sd)[:4])})."
        )
    k5 = sd.get("inception3a.branch3.1.conv.weight")
    return GoogLeNetConfig(
        num_classes=sd["fc.weight"].shape[0],
        batch_norm="conv1.bn.weight" in sd,
        branch5x5_kernel=int(k5.shape[-1]) if k5 is not None and k5.shape[-1] in (3, 5) else 3,
    )


def _check_keys(net: nn.Module, sd: Mapping[str, Tensor], path: Path) -> list[str]:
    """Raise CheckpointError listing every key problem; return the missing aux-head keys allowed through."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if k in sd and sd[k].shape != v.shape
    ]
    # torchvision drops the aux heads when aux_logits=False; such a file is usable, heads untrained.
    aux_missing = [k for k in missing if k.startswith(("aux1.", "aux2."))]
    missing = [k for k in missing if k not in aux_missing]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped (file vs model)", mismatched)):
        if keys:
            more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:_MAX_LISTED])}{more}")
    if problems:
        raise CheckpointError(f"{str(path)!r} does not fit this GoogLeNet: " + "; ".join(problems) + ".")
    return aux_missing


def load_checkpoint(path: str | os.PathLike, *, config: GoogLeNetConfig | None = None) -> tuple[GoogLeNet, dict]:
    """Build the net a checkpoint file describes and load it (float16 files come back as float32).

    Returns the net and the checkpoint's metadata (``card``, ``classes``, ``config`` when present).
    """
    path = Path(path).expanduser()
    obj = read_checkpoint(path)
    sd = _state_dict_of(obj, path)
    meta = dict(obj) if isinstance(obj, Mapping) and "state_dict" in obj else {}
    try:
        if config is None:
            config = GoogLeNetConfig(**meta["config"]) if isinstance(meta.get("config"), Mapping) else None
        net = GoogLeNet(config or _infer_config(sd, path))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} has a 'config' this version does not understand ({e}).") from None
    aux_missing = _check_keys(net, sd, path)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=not aux_missing)
    meta["aux_heads_missing"] = bool(aux_missing)
    return net, meta


def save_training_checkpoint(checkpoint: dict, path: Path | str) -> None:
    """Write a training checkpoint (see :mod:`gnet.train`), stamped with the format and version."""
    torch_save({"format": TRAINING_FORMAT, "version": TRAINING_VERSION, **checkpoint}, path)


def load_training_checkpoint(path: Path | str) -> dict:
    """Load a training checkpoint written by :mod:`gnet.train`, checking its format."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path} is not a gnet training checkpoint (no 'format': '{TRAINING_FORMAT}').")
    if ckpt.get("version") != TRAINING_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {ckpt.get('version')}; this gnet reads version {TRAINING_VERSION}."
        )
    return ckpt
