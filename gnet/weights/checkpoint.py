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
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError, WeightsNotFoundError
from ..net.model import (
    CLASSIFIERS,
    INIT_SCHEMES,
    MAX_INPUT_SIZE,
    MIN_INPUT_SIZE,
    STEMS,
    GoogLeNet,
    GoogLeNetConfig,
)
from ..storage import torch_save

__all__ = [
    "MAX_CLASSES",
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


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_PICKLE_PROTO = b"\x80"  # the legacy format is a bare pickle, which starts with the PROTO opcode
_FRAME_OPCODE = "Unsupported operand 149"  # pickle protocol 4's FRAME, which torch's safe loader rejects
# Bounds a model config must respect before anything is allocated: a card is data from a stranger.
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841 classes; 100,000 is a 400 MB classifier
_CONFIG_FIELDS = {f.name for f in fields(GoogLeNetConfig)}


def _label(path: Path, label: str | None) -> str:
    """How messages name the file: as the user named it (an upload's name), else its path."""
    return repr(label) if label else repr(str(path))


def read_checkpoint(path: Path, *, label: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, every failure turned into a named error.

    ``label`` is how messages name the file (an uploaded file's own name), default its path.
    """
    name = _label(path, label)
    if not path.exists():
        raise WeightsNotFoundError(f"Checkpoint file {name} does not exist: check the path.")
    if path.is_dir():
        raise CheckpointError(f"{name} is a folder, not a checkpoint file: pass the .pt/.pth file inside it.")
    with path.open("rb") as f:
        head = f.read(4)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_PROTO)):
        what = "an empty file" if not head else "neither the zip archive nor the pickle that torch.save writes"
        raise CheckpointError(f"{name} is not a PyTorch checkpoint ({what}): pass a file saved with torch.save.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"{name} contains pickled Python objects, not just tensors, so it was not loaded "
                "(it could run code): re-save it with torch.save(model.state_dict(), path)."
            ) from None
        if _FRAME_OPCODE in str(e):
            raise CheckpointError(
                f"{name} was saved with pickle protocol 4 or later, which torch's safe loader cannot read: "
                "re-save it with torch.save(model.state_dict(), path) and the default protocol."
            ) from None
        raise CheckpointError(f"{name} is damaged or was not written by torch.save: pass another file.") from None
    except Exception as e:  # torch.load raises anything from KeyError to RuntimeError on garbage input
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{name} is not a PyTorch checkpoint ({reason}): pass a file saved with torch.save.") from None


def _state_dict_of(obj: Any, name: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{name} holds no state dict of tensors: save it with torch.save(model.state_dict(), path)."
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _not_googlenet(sd: Mapping[str, Tensor], name: str) -> CheckpointError:
    return CheckpointError(
        f"{name} is not a GoogLeNet checkpoint: its first keys are {', '.join(list(sd)[:4])} "
        "(a GoogLeNet state dict has conv1.conv.weight, inception3a.branch1.conv.weight, ..., fc.weight)."
    )


def _infer_config(sd: Mapping[str, Tensor], name: str) -> GoogLeNetConfig:
    """The variant a bare state dict was saved from, read off its keys and shapes."""
    if "fc.weight" not in sd or "conv1.conv.weight" not in sd:
        raise _not_googlenet(sd, name)
    k5 = sd.get("inception3a.branch3.1.conv.weight")
    return GoogLeNetConfig(
        num_classes=sd["fc.weight"].shape[0],
        batch_norm="conv1.bn.weight" in sd,
        branch5x5_kernel=int(k5.shape[-1]) if k5 is not None and k5.shape[-1] in (3, 5) else 3,
    )


def _checked_config(raw: Any, sd: Mapping[str, Tensor], name: str) -> GoogLeNetConfig:
    """A checkpoint's ``config`` entry, every field checked against bounds and the file's tensors."""
    if "conv1.conv.weight" not in sd and "conv1.0.conv.weight" not in sd:  # the paper's stem, or a design-lab stem
        raise _not_googlenet(sd, name)
    problem = None
    if not isinstance(raw, Mapping):
        problem = "it is not a mapping"
    elif unknown := sorted(set(raw) - _CONFIG_FIELDS):
        problem = f"unknown field {unknown[0]!r}"
    if problem is None:
        config = {**asdict(GoogLeNetConfig()), **raw}
        rows = sd["fc.weight"].shape[0] if "fc.weight" in sd else None
        n, p, p_aux = config["num_classes"], config["dropout"], config["dropout_aux"]
        checks = [
            (type(n) is int and 1 <= n <= MAX_CLASSES, f"num_classes {n!r} (an integer from 1 to {MAX_CLASSES:,})"),
            (rows is None or n == rows, f"num_classes {n!r} while the file's fc layer has {rows} rows"),
            (isinstance(config["batch_norm"], bool), f"batch_norm {config['batch_norm']!r}"),
            (config["branch5x5_kernel"] in (3, 5), f"branch5x5_kernel {config['branch5x5_kernel']!r} (3 or 5)"),
            (config["init"] in INIT_SCHEMES, f"init {config['init']!r}"),
            (isinstance(config["transform_input"], bool), f"transform_input {config['transform_input']!r}"),
            (p is None or (isinstance(p, (int, float)) and 0 <= p < 1), f"dropout {p!r}"),
            (isinstance(p_aux, (int, float)) and 0 <= p_aux < 1, f"dropout_aux {p_aux!r}"),
            (config["stem"] in STEMS, f"stem {config['stem']!r} (one of {', '.join(STEMS)})"),
            (isinstance(config["reductions"], bool), f"reductions {config['reductions']!r}"),
            (isinstance(config["pool_proj"], bool), f"pool_proj {config['pool_proj']!r}"),
            (config["classifier"] in CLASSIFIERS, f"classifier {config['classifier']!r} (one of {', '.join(CLASSIFIERS)})"),
            ((config["classifier"] == "fc") == (config["fc_input_size"] is not None)
             and (config["fc_input_size"] is None or type(config["fc_input_size"]) is int
                  and MIN_INPUT_SIZE <= config["fc_input_size"] <= MAX_INPUT_SIZE),
             f"fc_input_size {config['fc_input_size']!r} with classifier {config['classifier']!r} "
             f"(an integer from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} with \"fc\", else none)"),
        ]
        problem = next((message for ok, message in checks if not ok), None)
    if problem is not None:
        raise CheckpointError(f"{name} has a model config that cannot be used: {problem}.")
    return GoogLeNetConfig(**config)


def _check_keys(config: GoogLeNetConfig, sd: Mapping[str, Tensor], name: str) -> list[str]:
    """Raise CheckpointError listing every key problem; return the missing aux-head keys allowed through.

    The expected keys and shapes come from a net built on the meta device: nothing is allocated
    until the file is known to fit.
    """
    with torch.device("meta"):
        expected = GoogLeNet(config).state_dict()
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
        raise CheckpointError(f"{name} does not fit this GoogLeNet: " + "; ".join(problems) + ".")
    return aux_missing


def _check_finite(sd: Mapping[str, Tensor], name: str) -> None:
    for key, tensor in sd.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{name} has non-finite values (NaN or Inf) in {key}: the training diverged or the file is damaged, "
                "so use another checkpoint."
            )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    config: GoogLeNetConfig | None = None,
    label: str | None = None,
    check: Callable[[dict, GoogLeNetConfig], None] | None = None,
) -> tuple[GoogLeNet, dict]:
    """Build the net a checkpoint file describes and load it (float16 files come back as float32).

    Every check runs before the network is allocated: the file's ``config`` against bounds and
    the file's own tensors, the keys and shapes, finite values, and ``check(meta, config)``
    (the caller's checks of a model card). ``label`` names the file in messages. Returns the
    net and the checkpoint's metadata (``card``, ``classes``, ``config`` when present).
    """
    path = Path(path).expanduser()
    name = _label(path, label)
    obj = read_checkpoint(path, label=label)
    sd = _state_dict_of(obj, name)
    meta = dict(obj) if isinstance(obj, Mapping) and "state_dict" in obj else {}
    if config is None:
        config = _checked_config(meta["config"], sd, name) if "config" in meta else _infer_config(sd, name)
    aux_missing = _check_keys(config, sd, name)
    _check_finite(sd, name)
    if check is not None:
        check(meta, config)
    # In the standard layout, whatever the file's: the trainer saves channels_last weights, and a
    # 1x1 kernel saved so passes .contiguous() unchanged yet makes its convolution's output channels_last.
    weights = {
        k: v.to(torch.float32 if v.is_floating_point() else v.dtype, memory_format=torch.contiguous_format)
        for k, v in sd.items()
    }
    if aux_missing:  # the aux heads keep their random initialisation
        net = GoogLeNet(config)
        net.load_state_dict(weights, strict=False)
    else:  # every tensor comes from the file: skip the random initialisation (a quarter second)
        with torch.device("meta"):
            net = GoogLeNet(config)
        net.load_state_dict(weights, assign=True)
    meta["aux_heads_missing"] = bool(aux_missing)
    return net, meta


def save_training_checkpoint(checkpoint: dict, path: Path | str) -> None:
    """Write a training checkpoint (see :mod:`gnet.train.loop`), stamped with the format and version."""
    torch_save({"format": TRAINING_FORMAT, "version": TRAINING_VERSION, **checkpoint}, path)


def load_training_checkpoint(path: Path | str) -> dict:
    """Load a training checkpoint written by :mod:`gnet.train.loop`, checking its format."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path} is not a gnet training checkpoint (no 'format': '{TRAINING_FORMAT}').")
    if ckpt.get("version") != TRAINING_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {ckpt.get('version')}; this gnet reads version {TRAINING_VERSION}."
        )
    return ckpt
