"""gnet: look inside GoogLeNet (Inception v1): its branches, its three heads, its gradients and its cost.

Public API, flat (users never import private submodules)::

    import gnet
    loaded = gnet.load("auto")              # net + model card + preprocessing, on the best device
    analysis = gnet.analyze(loaded, "cat.jpg", top=5)
    rows = gnet.flops(loaded.net, input_size=224)

Every name loads its submodule on first use (PEP 562), so ``import gnet`` and ``gnet --help``
import no torch; ``docs/ARCHITECTURE.md`` says which module owns what.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the submodule that owns it
_EXPORTS: dict[str, str] = {
    "CheckpointError": "errors",
    "DatasetError": "errors",
    "DeviceError": "errors",
    "GNetError": "errors",
    "ImageError": "errors",
    "TargetError": "errors",
    "WeightsError": "errors",
    "WeightsNotFoundError": "errors",
    "AUX_ATTACH": "layers",
    "BRANCHES": "layers",
    "HEADS": "layers",
    "INCEPTION_MODULES": "layers",
    "WEIGHT_LAYERS": "layers",
    "parse_channel": "layers",
    "INIT_SCHEMES": "model",
    "GoogLeNet": "model",
    "GoogLeNetConfig": "model",
    "HeadLogits": "model",
    "googlenet": "model",
    "AUX_WEIGHT": "losses",
    "head_losses": "losses",
    "describe_device": "device",
    "resolve_device": "device",
    "exclusive": "guard",
    "load_image": "images",
    "SOURCES": "sources",
    "LoadedModel": "weights",
    "ModelCard": "weights",
    "load": "weights",
    "load_checkpoint": "checkpoint",
    "Analysis": "analysis",
    "analyze": "probe",
    "predict": "probe",
    "CostRow": "cost",
    "flops": "cost",
    "paper_table": "table1",
    "table1_comparison": "table1",
    "totals": "cost",
    "GradientResult": "gradients",
    "compare_variants": "gradients",
    "layer_gradients": "gradients",
    "attribute": "attributions",
    "ablate": "ablation",
    "branch_importance": "ablation",
    "example_index": "examples",
    "visualize": "features",
    "TrainConfig": "train",
    "DistillConfig": "distill",
    "distill_aux": "distill",
    "evaluation_set": "evaldata",
    "head_logits": "headlogits",
    "compare_heads": "headstats",
    "early_exits": "earlyexit",
    "exit_costs": "earlyexit",
    "in_domain": "indomain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .ablation import ablate, branch_importance
    from .attributions import attribute
    from .checkpoint import load_checkpoint
    from .device import describe_device, resolve_device
    from .errors import (
        CheckpointError,
        DatasetError,
        DeviceError,
        GNetError,
        ImageError,
        TargetError,
        WeightsError,
        WeightsNotFoundError,
    )
    from .cost import CostRow, flops, totals
    from .earlyexit import early_exits, exit_costs
    from .evaldata import evaluation_set
    from .gradients import GradientResult, compare_variants, layer_gradients
    from .examples import example_index
    from .features import visualize
    from .guard import exclusive
    from .headlogits import head_logits
    from .headstats import compare_heads
    from .images import load_image
    from .indomain import in_domain
    from .layers import AUX_ATTACH, BRANCHES, HEADS, INCEPTION_MODULES, WEIGHT_LAYERS, parse_channel
    from .losses import AUX_WEIGHT, head_losses
    from .model import INIT_SCHEMES, GoogLeNet, GoogLeNetConfig, HeadLogits, googlenet
    from .analysis import Analysis
    from .probe import analyze, predict
    from .table1 import paper_table, table1_comparison
    from .distill import DistillConfig, distill_aux
    from .train import TrainConfig
    from .sources import SOURCES
    from .weights import LoadedModel, ModelCard, load
