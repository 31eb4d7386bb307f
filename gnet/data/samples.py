"""The sample images shipped in ``assets/samples``: Fashion-MNIST test images and a few photos."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..storage import ASSETS_DIR

__all__ = ["SAMPLES_DIR", "Sample", "class_slug", "sample_images"]

SAMPLES_DIR = ASSETS_DIR / "samples"
# Fashion-MNIST samples are named fmnist_<class-slug>_<index>.png by gnet.train.loop.export_samples.
_FMNIST_NAME = re.compile(r"^fmnist_(?P<slug>.+)_(?P<index>\d+)$")


@dataclass(frozen=True)
class Sample:
    name: str
    path: Path
    slug: str | None  # the true class, as a slug, for Fashion-MNIST samples; None for photos

    def true_label(self, classes: list[str]) -> str | None:
        """The true class name among ``classes``, if this sample has one and it is there."""
        if self.slug is None:
            return None
        by_slug = {class_slug(c): c for c in classes}
        return by_slug.get(self.slug)


def class_slug(name: str) -> str:
    """File-name form of a class name: "T-shirt/top" -> "t-shirt-top", "Ankle boot" -> "ankle-boot"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def sample_images(directory: Path = SAMPLES_DIR) -> list[Sample]:
    """All sample images, Fashion-MNIST ones first, sorted by name."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        m = _FMNIST_NAME.match(path.stem)
        found.append(Sample(name=path.stem, path=path, slug=m["slug"] if m else None))
    return sorted(found, key=lambda s: (s.slug is None, s.name))
