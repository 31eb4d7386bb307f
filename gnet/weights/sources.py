"""The weight sources a user can name, as data: the CLI's help and the app's menu read it without torch.

:func:`gnet.weights.loader.load` turns a name (or a checkpoint path) into a ready model. Any source
may end in ``+aux=PATH`` to stack the auxiliary heads of an overlay written by
``gnet distill-aux``, or in ``+labels=PATH`` to stack the new last layers written by
``gnet retrain-heads`` (:mod:`gnet.weights.overlay`; both may follow each other, read left to
right): a source stays one string, so the app's caches and the CLI's options carry it unchanged.
"""

from __future__ import annotations

__all__ = ["LABELS_SEPARATOR", "OVERLAY_SEPARATOR", "SOURCES", "split_overlay", "split_source", "with_overlay"]

SOURCES: dict[str, str] = {
    "auto": "ImageNet weights if already in the torch hub cache, else the bundled Fashion-MNIST net",
    "bundled": "GoogLeNet trained here on Fashion-MNIST, all three heads trained (ships in assets/)",
    "imagenet": "torchvision's ImageNet-1K weights (auxiliary heads NOT trained)",
    "random": "untrained, seeded initialisation",
}

OVERLAY_SEPARATOR = "+aux="
LABELS_SEPARATOR = "+labels="
_SEPARATORS = {"aux": OVERLAY_SEPARATOR, "labels": LABELS_SEPARATOR}


def split_overlay(weights: str) -> tuple[str, str | None, str | None]:
    """The last overlay peeled off: ``"bundled+aux=a.pt+labels=l.pt"`` -> ``("bundled+aux=a.pt", "labels", "l.pt")``;
    a source without overlay -> ``(weights, None, None)``."""
    found = [(weights.rfind(sep), kind, sep) for kind, sep in _SEPARATORS.items()]
    at, kind, sep = max(found)
    base, path = weights[:at], weights[at + len(sep):]
    return (base, kind, path) if at > 0 and path else (weights, None, None)


def split_source(weights: str) -> tuple[str, str | None]:
    """``"imagenet+aux=heads.pt"`` -> ``("imagenet", "heads.pt")``: the weights below every overlay, and the last
    overlay's path; a source without overlay -> ``(weights, None)``."""
    base, _, path = split_overlay(weights)
    while (peeled := split_overlay(base))[1] is not None:
        base = peeled[0]
    return base, path


def with_overlay(weights: str, overlay: object | None, kind: str = "aux") -> str:
    """The source string that stacks ``overlay`` (a path) of ``kind`` (aux or labels) on ``weights``;
    ``weights`` itself when there is none."""
    return weights if overlay is None else f"{weights}{_SEPARATORS[kind]}{overlay}"
