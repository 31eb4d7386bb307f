"""New classes for all three heads on a frozen trunk: ``gnet retrain-heads``.

The paper keeps one linear layer after global average pooling because it "enables adapting
and fine-tuning our networks for other label sets easily" (Szegedy et al. 2014, section 5).
This module does exactly that, for every head: the trunk, the auxiliary heads' convolution and
first dense layer stay as trained, and only the last linear layer of each head is fitted anew on
``FOLDER/<class>/<image>``: main's ``fc`` (on inception5b's pooled output) and ``aux1.fc2``,
``aux2.fc2`` (on their head's 1,024 dense features). The three heads then answer in the new
classes, so aux vs main can be compared on a user's own things.

The trunk is frozen, so one pass records each last layer's input (:func:`gnet.heads.readout.record_pooled`,
float16 memory maps) and each layer is a multinomial logistic regression on it
(:func:`gnet.heads.readout.fit_linear`, full-batch L-BFGS). A fifth of each class is kept aside
and scored. The result is an overlay file (:mod:`gnet.weights.overlay`), stacked with
``SOURCE+labels=PATH``.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..device import hardware
from ..errors import DatasetError
from ..inspect.attributions import Stopped
from ..inspect.evaluation import LabelledImages
from ..net.layers import HEADS
from ..weights.card import LoadedModel
from ..weights.overlay import HEAD_LAST_LAYERS, RETRAINED
from .readout import fit_linear, record_pooled

__all__ = ["RetrainResult", "head_inputs", "retrain_heads"]

RECORDING = 0.9  # the share of the progress the recording pass takes; the three fits take the rest
Progress = Callable[[float], "bool | None"]  # fraction done -> False to stop


@dataclass
class RetrainResult:
    """The three new last layers (``fc.*``, ``aux1.fc2.*``, ``aux2.fc2.*``) and the overlay's card."""

    state_dict: dict[str, Tensor]
    card: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.card)


def head_inputs(net: nn.Module) -> dict[str, nn.Module]:
    """The module whose output each head's last layer reads: the dropout before it (the identity in eval mode)."""
    return {"main": net.dropout, "aux1": net.aux1.dropout, "aux2": net.aux2.dropout}


def retrain_heads(
    loaded: LoadedModel, data: LabelledImages, *, held_out: float = 0.2, seed: int = 0, l2: float = 1e-4,
    max_iter: int = 200, progress: Progress | None = None, command: str = "",
) -> RetrainResult:
    """Fit the last linear layer of main, aux1 and aux2 of ``loaded`` on ``data``'s classes; ``loaded`` is unchanged.

    ``data`` (:func:`gnet.inspect.evaluation.class_folder`) names its own classes. Each class
    keeps ``held_out`` of its images aside (at least one), on which each head's accuracy is
    reported. Raises :class:`DatasetError` for fewer than 2 classes or a class with fewer than 2 images,
    and :class:`gnet.inspect.attributions.Stopped` when ``progress`` returns False (after a batch or a fit).
    """
    started = time.monotonic()
    counts = Counter(data.labels.tolist())
    if len(counts) < 2:
        raise DatasetError(f"{data.name} holds {len(counts)} class: new heads need at least 2 classes.")
    fit, held = data.split(held_out, seed)  # refuses a class with fewer than 2 images
    total = len(fit) + len(held)

    def report(done: float) -> None:
        if progress is not None and progress(done) is False:
            raise Stopped(f"stopped at {done:.0%} of retraining the heads")
    points = head_inputs(loaded.net)
    classes = len(data.classes)
    layers: dict[str, Tensor] = {}
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gnet-retrain-") as tmp:
        Path(tmp, "fit").mkdir()
        Path(tmp, "held").mkdir()
        fit_x, _ = record_pooled(loaded, fit, Path(tmp, "fit"), points=points,
                                 progress=lambda done: report(RECORDING * done / total))
        held_x, _ = record_pooled(loaded, held, Path(tmp, "held"), points=points,
                                  progress=lambda done: report(RECORDING * (len(fit) + done) / total))
        for i, head in enumerate(HEADS):
            weight, bias = fit_linear(fit_x[head], fit.labels, classes, l2=l2, max_iter=max_iter)
            logits = torch.addmm(bias, torch.from_numpy(np.asarray(held_x[head], dtype=np.float32)), weight.T)
            accuracy[head] = round(float((logits.argmax(1) == held.labels).double().mean()), 4)
            layer = HEAD_LAST_LAYERS[head]
            layers[f"{layer}.weight"], layers[f"{layer}.bias"] = weight, bias
            report(RECORDING + (1 - RECORDING) * (i + 1) / len(HEADS))
        del fit_x, held_x  # the memory maps close before their folder goes
    card = {
        "base_weights_sha256": loaded.weights_hash,
        "base_name": loaded.card.name,
        "method": RETRAINED,
        "classes": list(data.classes),
        "data": {"name": data.name, "images_per_class": {data.classes[k]: n for k, n in sorted(counts.items())}},
        "held_out": {"share_of_each_class": held_out, "seed": seed, "images": len(held), "accuracy": accuracy},
        "fit": {"images": len(fit), "l2": l2, "max_iter": max_iter, "solver": "full-batch L-BFGS (torch)"},
        "seconds": round(time.monotonic() - started, 2),
        "hardware": hardware(),
        "command": command,
    }
    return RetrainResult(layers, card)
