"""Channel families: one module's channels grouped by what excites them, and how each family spreads over the branches.

"Branch Specialization" (Voss et al. 2021) on any weights: each channel's activation profile over
a set (its spatial mean per image, z-scored), k-means on the profiles (scikit-learn's), then a
hypergeometric test per family and branch of whether the branch holds more of the family than
chance predicts, Bonferroni-corrected over families x branches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import TargetError
from ..guard import exclusive
from ..net.layers import BRANCHES, INCEPTION_MODULES, branch_channels, module_channels
from ..storage import stored_or_built
from ..weights.card import LoadedModel
from .circuits import channel_of
from .evaluation import LabelledImages, batch_size_for, evaluation_set
from .probe import forward_to

__all__ = ["ASSET", "DEFAULT_FAMILIES", "FAMILY_IMAGES", "Families", "families", "group"]

FAMILY_IMAGES = 2000  # images whose activations profile each channel
DEFAULT_FAMILIES = 8
ASSET = "channel_families"  # the disk cache's kind
Progress = Callable[[float], None]


@dataclass(frozen=True)
class Families:
    """The channels of one module grouped by what they respond to, and how each group spreads over the branches."""

    module: str
    data: str  # the set the profiles come from
    images: int
    labels: np.ndarray  # C: each channel's family, 0..F-1 (channels in module order)
    examples: np.ndarray  # F x E: the images that excite each family most (its members' mean z-scored activation)
    counts: np.ndarray  # F x 4: members per family and branch (BRANCHES order)
    expected: np.ndarray  # F x 4: what chance predicts, family size x branch share of the module
    p_values: np.ndarray  # F x 4: P(at least this many by chance), hypergeometric, Bonferroni-corrected over F x 4
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def members(self, family: int) -> list[str]:
        return [channel_of(self.module, int(i)).name for i in np.flatnonzero(self.labels == family)]

    def gathered(self, alpha: float = 0.05) -> list[tuple[int, str]]:
        """(family, branch) pairs holding more of the family than chance allows at level ``alpha`` (corrected)."""
        return [(int(f), list(BRANCHES)[int(b)]) for f, b in zip(*np.nonzero(self.p_values < alpha))]

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per family: its size, members per branch, expected, and the smallest corrected p-value."""
        rows = []
        for f in range(self.size):
            row: dict[str, Any] = {"family": f, "channels": int(self.counts[f].sum())}
            for b, name in enumerate(BRANCHES):
                row[name] = int(self.counts[f, b])
                row[f"{name}_expected"] = float(self.expected[f, b])
            best = int(np.argmax(self.counts[f] / np.maximum(self.expected[f], 1e-9)))
            row["most_gathered_in"] = list(BRANCHES)[best]
            row["p_value"] = float(self.p_values[f, best])  # for that branch
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "data": self.data,
            "images": self.images,
            "families": self.to_rows(),
            "members": {f: self.members(f) for f in range(self.size)},
            "examples": self.examples.tolist(),
            "gathered": [{"family": f, "branch": b} for f, b in self.gathered()],
            "test": "hypergeometric: a family of n among the module's N channels, a branch of B of them; "
            "Bonferroni over families x branches",
            "seconds": self.seconds,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "module": np.array(self.module), "data": np.array(self.data), "images": np.array(self.images),
            "labels": self.labels, "examples": self.examples, "counts": self.counts, "expected": self.expected,
            "p_values": self.p_values, "seconds": np.array(self.seconds),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> Families:
        return cls(
            module=str(a["module"]), data=str(a["data"]), images=int(a["images"]),
            labels=np.asarray(a["labels"]), examples=np.asarray(a["examples"]), counts=np.asarray(a["counts"]),
            expected=np.asarray(a["expected"]), p_values=np.asarray(a["p_values"]), seconds=float(a["seconds"]),
        )


def _profiles(loaded: LoadedModel, module: str, data: LabelledImages, progress: Progress | None) -> Tensor:
    """C x N: each channel's spatial-mean activation on each image, one forward (up to ``module``) per batch."""
    net = loaded.net
    batch_size = batch_size_for(loaded.card.input_size)
    columns = []
    for x, _, indices in data.batches(batch_size):
        with exclusive(net, training=False), torch.inference_mode():
            columns.append(forward_to(net, x.to(loaded.device), module).float().mean(dim=(2, 3)).cpu())
        if progress is not None:
            progress(int(indices[-1] + 1) / len(data))
    return torch.cat(columns).T


def group(profiles: np.ndarray, module: str, n_families: int, *, seed: int = 0,
          examples: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluster C x N activation profiles: (labels, examples, counts, expected, corrected p-values).

    A channel's profile is z-scored across images (so families share *what* excites them, not
    how strongly); channels that never vary form no profile and are clustered as zeros.
    """
    from scipy.stats import hypergeom
    from sklearn.cluster import KMeans

    z = profiles - profiles.mean(axis=1, keepdims=True)
    spread = z.std(axis=1, keepdims=True)
    z = np.divide(z, spread, out=np.zeros_like(z), where=spread > 0)
    labels = KMeans(n_clusters=n_families, n_init=4, random_state=seed).fit_predict(z)
    widths = np.array([branch_channels(module, b) for b in BRANCHES])
    branch_of = np.repeat(np.arange(len(BRANCHES)), widths)
    counts = np.zeros((n_families, len(BRANCHES)), dtype=np.int64)
    np.add.at(counts, (labels, branch_of), 1)
    sizes = counts.sum(axis=1, keepdims=True)
    total = int(widths.sum())
    expected = sizes * widths[None, :] / total
    # P(X >= count) for X ~ Hypergeom(total, branch width, family size): sf(count - 1).
    p = hypergeom.sf(counts - 1, total, widths[None, :], sizes)
    p_values = np.minimum(p * counts.size, 1.0)
    best = np.stack([z[labels == f].mean(axis=0) if (labels == f).any() else np.zeros(z.shape[1])
                     for f in range(n_families)])
    top = np.argsort(-best, axis=1, kind="stable")[:, :examples]
    return labels.astype(np.int64), top.astype(np.int64), counts, expected, p_values


def families(
    loaded: LoadedModel,
    module: str,
    data: LabelledImages | None = None,
    *,
    n_families: int = DEFAULT_FAMILIES,
    limit: int | None = FAMILY_IMAGES,
    build: bool = True,
    progress: Progress | None = None,
) -> Families | None:
    """The channel families of ``module`` over ``data`` (default: the evaluation set's first ``limit`` images).

    Read from the disk cache when computed before for these weights, data and sizes; else
    computed (one forward up to ``module`` per batch, with ``progress``, then k-means) and
    cached; with ``build=False``, None instead of computing.
    """
    if module not in INCEPTION_MODULES:
        raise TargetError(f"Unknown module {module!r}: choose one of {', '.join(INCEPTION_MODULES)}.")
    channels = module_channels(module)
    if not 2 <= n_families <= channels // 4:
        raise TargetError(f"{n_families} families is out of range for {module}: choose 2 to {channels // 4}.")
    if data is None:
        data = evaluation_set(loaded, limit=limit)

    def compute() -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        profiles = _profiles(loaded, module, data, progress).numpy().astype(np.float64)
        labels, examples, counts, expected, p_values = group(profiles, module, n_families)
        return Families(module, data.name, len(data), labels, examples, counts, expected, p_values,
                        time.perf_counter() - t0).to_arrays()

    key = {"weights": loaded.weights_hash, **data.key, "module": module, "families": n_families}
    found = stored_or_built(ASSET, key, compute if build else None)
    return None if found is None else Families.from_arrays(found[0])
