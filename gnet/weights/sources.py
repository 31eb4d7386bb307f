"""The weight sources a user can name, as data: the CLI's help and the app's menu read it without torch.

:func:`gnet.weights.loader.load` turns a name (or a checkpoint path) into a ready model. Any source
may end in ``+aux=PATH`` to stack the auxiliary heads of an overlay written by
``gnet distill-aux`` (:mod:`gnet.weights.overlay`): a source stays one string, so the app's caches and
the CLI's options carry it unchanged.
"""

from __future__ import annotations

__all__ = ["OVERLAY_SEPARATOR", "SOURCES", "split_source", "with_overlay"]

SOURCES: dict[str, str] = {
    "auto": "ImageNet weights if already in the torch hub cache, else the bundled Fashion-MNIST net",
    "bundled": "GoogLeNet trained here on Fashion-MNIST, all three heads trained (ships in assets/)",
    "imagenet": "torchvision's ImageNet-1K weights (auxiliary heads NOT trained)",
    "random": "untrained, seeded initialisation",
}

OVERLAY_SEPARATOR = "+aux="


def split_source(weights: str) -> tuple[str, str | None]:
    """``"imagenet+aux=heads.pt"`` -> ``("imagenet", "heads.pt")``; a source without overlay -> ``(weights, None)``."""
    base, sep, overlay = weights.rpartition(OVERLAY_SEPARATOR)
    return (base, overlay) if sep and base and overlay else (weights, None)


def with_overlay(weights: str, overlay: object | None) -> str:
    """The source string that stacks ``overlay`` (a path) on ``weights``; ``weights`` itself when there is none."""
    return weights if overlay is None else f"{weights}{OVERLAY_SEPARATOR}{overlay}"
