"""The weight sources a user can name, as data: the CLI's help and the app's menu read it without torch.

:func:`gnet.weights.load` turns a name (or a checkpoint path) into a ready model.
"""

from __future__ import annotations

__all__ = ["SOURCES"]

SOURCES: dict[str, str] = {
    "auto": "ImageNet weights if already in the torch hub cache, else the bundled Fashion-MNIST net",
    "bundled": "GoogLeNet trained here on Fashion-MNIST, all three heads trained (ships in assets/)",
    "imagenet": "torchvision's ImageNet-1K weights (auxiliary heads NOT trained)",
    "random": "untrained, seeded initialisation",
}
