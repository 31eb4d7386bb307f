"""gnet: look inside GoogLeNet (Inception v1) — its branches, its three heads, its gradients and its cost.

Public API, flat (users never import private submodules)::

    import gnet
    loaded = gnet.load("auto")              # net + model card + preprocessing, on the best device
    analysis = gnet.analyze(loaded, "cat.jpg", top=5)
    rows = gnet.flops(loaded.net, input_size=224)
"""

from .device import describe_device, resolve_device
from .errors import (
    CheckpointError,
    DatasetError,
    DeviceError,
    GNetError,
    ImageError,
    WeightsError,
    WeightsNotFoundError,
)
from .flops import CostRow, flops, paper_table, totals
from .guard import exclusive
from .images import load_image
from .model import BRANCHES, INCEPTION_MODULES, INIT_SCHEMES, GoogLeNet, GoogLeNetConfig, HeadLogits, googlenet
from .probe import Analysis, analyze, predict
from .weights import SOURCES, LoadedModel, ModelCard, load, load_checkpoint

# Training, gradient and attribution tools load on first use (PEP 562): they pull in tqdm and
# captum, and importing gnet.train eagerly would make `python -m gnet.train` warn.
_LAZY = {
    "attribute": "attributions",
    "compare_variants": "gradients",
    "layer_gradients": "gradients",
    "TrainConfig": "train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BRANCHES",
    "INCEPTION_MODULES",
    "INIT_SCHEMES",
    "SOURCES",
    "Analysis",
    "TrainConfig",
    "CheckpointError",
    "CostRow",
    "DatasetError",
    "DeviceError",
    "GNetError",
    "GoogLeNet",
    "GoogLeNetConfig",
    "HeadLogits",
    "ImageError",
    "LoadedModel",
    "ModelCard",
    "WeightsError",
    "WeightsNotFoundError",
    "analyze",
    "attribute",
    "compare_variants",
    "describe_device",
    "exclusive",
    "flops",
    "layer_gradients",
    "googlenet",
    "load",
    "load_checkpoint",
    "load_image",
    "paper_table",
    "predict",
    "resolve_device",
    "totals",
]
