"""Knock-outs: what the three heads say with branches, or single channels, zeroed; what each branch is worth.

- :func:`ablate`: one image's heads with some branches or channels set to zero at their
  module's output (:func:`gnet.inspect.probe.knocked_out`, a forward hook).
- :func:`branch_importance`: for each of the 36 (module, branch) pairs and each head, the
  accuracy lost on a labelled set when that one branch is knocked out, in one fanned-out
  forward per batch.
- :func:`importance`: that table for the bundled weights from ``assets/`` (computed over the
  10,000 Fashion-MNIST test images by ``scripts/build_branch_importance.py``), for other weights
  from the disk cache or computed on demand and cached, keyed by weights hash and data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DatasetError
from ..guard import exclusive
from ..net.layers import BRANCH_POINTS, HEADS, ChannelTarget, parse_channel
from ..storage import load_asset, stored_or_built
from ..weights.card import LoadedModel
from .analysis import Prediction
from .evaluation import LabelledImages, batch_size_for, evaluation_set
from .probe import every_branch_knocked_out, knocked_out

__all__ = ["ASSET", "Ablation", "BranchImportance", "ablate", "branch_importance", "importance", "parse_knockouts"]

ASSET = "branch_importance"  # assets/branch_importance.{npz,json}, and the disk cache's kind
Progress = Callable[[float], None]


def parse_knockouts(items: Iterable[str | ChannelTarget]) -> list[ChannelTarget]:
    """Branches (``inception4c.5x5``) and channels (``inception4d.pool_proj:3``) to knock out.

    Raises :class:`~gnet.errors.TargetError` naming the valid choices for a bad one.
    """
    return [item if isinstance(item, ChannelTarget) else parse_channel(item) for item in items]


@dataclass(frozen=True)
class Ablation:
    """The three heads' predictions for one image with ``knockouts`` zeroed (none: the intact net)."""

    knockouts: tuple[str, ...]
    classes: list[str]
    probs: dict[str, Tensor]  # head -> class probabilities (CPU)
    top: dict[str, list[Prediction]]

    def change(self, intact: Ablation) -> dict[str, dict[str, Any]]:
        """Per head, against the ``intact`` net: the top-1 before and after, and how far the distribution moved."""
        changes = {}
        for head in HEADS:
            before, after = intact.probs[head], self.probs[head]
            first = int(before.argmax())
            changes[head] = {
                "top1_intact": self.classes[first],
                "top1": self.classes[int(after.argmax())],
                "top1_changed": int(after.argmax()) != first,
                "prob_of_intact_top1": float(after[first]),
                "prob_of_intact_top1_intact": float(before[first]),
                "total_variation": 0.5 * float((after - before).abs().sum()),
            }
        return changes

    def to_dict(self) -> dict[str, Any]:
        return {"knockouts": list(self.knockouts), "heads": {h: [p.to_dict() for p in self.top[h]] for h in HEADS}}


def ablate(loaded: LoadedModel, image: Any, knockouts: Iterable[str | ChannelTarget] = (), *, top: int = 5) -> Ablation:
    """Every head's prediction for ``image`` with ``knockouts`` zeroed at their modules' outputs.

    ``image`` is what :func:`gnet.analyze` takes (a path, bytes, PIL image or a preprocessed
    tensor). Knocking out every branch of a module is allowed: its output is then all zero.
    """
    targets = parse_knockouts(knockouts)
    if isinstance(image, Tensor):
        x = (image if image.dim() == 4 else image.unsqueeze(0)).to(loaded.device)
    else:
        x = loaded.preprocess(image)
    net = loaded.net
    with exclusive(net, training=False), torch.inference_mode(), knocked_out(net, targets):
        out = net(x)
    probs = {h: F.softmax(getattr(out, h)[0].float(), dim=-1).cpu() for h in HEADS}
    k = min(top, len(loaded.classes))
    tops = {}
    for h, p in probs.items():
        values, indices = torch.topk(p, k)
        tops[h] = [Prediction(int(i), loaded.classes[int(i)], float(v)) for v, i in zip(values, indices)]
    return Ablation(tuple(t.name for t in targets), list(loaded.classes), probs, tops)


@dataclass(frozen=True)
class BranchImportance:
    """Accuracy of each head with each branch knocked out, over ``images`` labelled images."""

    images: int
    data: str  # the labelled set, in words
    correct: np.ndarray  # (1 + 36) x 3 counts: row 0 intact, then BRANCH_POINTS order; columns HEADS order

    @property
    def intact(self) -> dict[str, float]:
        """Each head's accuracy with nothing knocked out."""
        return {h: float(self.correct[0, j]) / self.images for j, h in enumerate(HEADS)}

    def to_frame(self) -> pd.DataFrame:
        """One row per (module, branch, head): accuracy knocked out, intact, and the drop (intact - knocked out)."""
        accuracy = self.correct / self.images
        rows = [
            {
                "module": p.module,
                "branch": p.branch,
                "head": h,
                "accuracy": float(accuracy[1 + i, j]),
                "intact_accuracy": float(accuracy[0, j]),
                "drop": float(accuracy[0, j] - accuracy[1 + i, j]),
            }
            for i, p in enumerate(BRANCH_POINTS)
            for j, h in enumerate(HEADS)
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "data": self.data,
            "intact_accuracy": self.intact,
            "rows": self.to_frame().to_dict(orient="records"),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"correct": self.correct, "images": np.array(self.images), "data": np.array(self.data)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BranchImportance:
        return cls(int(arrays["images"]), str(arrays["data"]), np.asarray(arrays["correct"], dtype=np.int64))


def _check_labels(loaded: LoadedModel, data: LabelledImages) -> None:
    if list(data.classes) != list(loaded.classes):
        raise DatasetError(
            f"Branch importance measures accuracy, and {data.name} is labelled with other classes than these "
            "weights': use an image folder named after the weights' classes."
        )
    if not data.labelled:
        raise DatasetError(
            f"Branch importance measures accuracy, and {data.name} has images without a label these weights know: "
            "use an image folder named after the weights' classes."
        )


def branch_importance(
    loaded: LoadedModel, data: LabelledImages, *, batch_size: int | None = None, progress: Progress | None = None
) -> BranchImportance:
    """For each (module, branch) and head, how many of ``data``'s images are right with that branch knocked out.

    Each batch makes one forward in which it fans out at every module into its 36 knocked-out
    copies (:func:`gnet.inspect.probe.every_branch_knocked_out`): a knock-out shares the layers below
    its module with the intact pass. A head that does not read a module is unchanged by its
    knock-out and gets the intact count. The model is taken per batch, so other users of a
    shared model wait one batch at most. ``progress`` gets the fraction of images done.
    Raises :class:`DatasetError` when ``data`` is not labelled with the weights' classes.
    """
    _check_labels(loaded, data)
    rows = 1 + len(BRANCH_POINTS)
    correct = np.zeros((rows, len(HEADS)), dtype=np.int64)
    # A batch grows 37-fold by the last module: a third of the usual batch keeps memory near a plain pass's.
    batch_size = batch_size or batch_size_for(loaded.card.input_size, at_64=48)
    net = loaded.net
    for x, y, indices in data.batches(batch_size):
        n = len(y)
        with exclusive(net, training=False), torch.inference_mode(), every_branch_knocked_out(net, n):
            out = net(x.to(loaded.device))
        for j, head in enumerate(HEADS):
            logits = getattr(out, head)
            right = (logits.argmax(1).cpu().view(-1, n) == y).sum(1).numpy()  # one count per block read
            correct[: len(right), j] += right
            correct[len(right) :, j] += right[0]  # knock-outs after the head's last module change nothing
        if progress is not None:
            progress(int(indices[-1] + 1) / len(data))
    return BranchImportance(len(data), data.name, correct)


def importance(
    loaded: LoadedModel, data: LabelledImages | None = None, *, build: bool = True, progress: Progress | None = None
) -> BranchImportance | None:
    """:func:`branch_importance` over ``data``, shipped, cached or computed.

    Without ``data``: :func:`gnet.inspect.evaluation.evaluation_set` (the Fashion-MNIST test set for the
    bundled net, the samples for other weights).

    The shipped table is used only for the weights and data its card names; anything else is
    read from the disk cache or computed (with ``progress``) and cached, keyed by weights hash
    and data; with ``build=False``, None instead of computing. Without ``data`` and without
    Fashion-MNIST installed, the shipped table for these weights is used if there is one;
    otherwise :class:`DatasetError` says what to install.
    """
    if data is None:
        try:
            data = evaluation_set(loaded)
        except DatasetError:
            shipped = load_asset(ASSET, {"weights": loaded.weights_hash})
            if shipped is None:
                raise
            return BranchImportance.from_arrays(shipped)
    compute = (lambda: branch_importance(loaded, data, progress=progress).to_arrays()) if build else None
    found = stored_or_built(ASSET, {"weights": loaded.weights_hash, **data.key}, compute)
    return None if found is None else BranchImportance.from_arrays(found[0])
