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
    "DesignError": "errors",
    "DeviceError": "errors",
    "GNetError": "errors",
    "ImageError": "errors",
    "TargetError": "errors",
    "WeightsError": "errors",
    "WeightsNotFoundError": "errors",
    "AUX_ATTACH": "net.layers",
    "BRANCHES": "net.layers",
    "HEADS": "net.layers",
    "INCEPTION_MODULES": "net.layers",
    "WEIGHT_LAYERS": "net.layers",
    "parse_channel": "net.layers",
    "INIT_SCHEMES": "net.model",
    "GoogLeNet": "net.model",
    "GoogLeNetConfig": "net.model",
    "HeadLogits": "net.model",
    "googlenet": "net.model",
    "AUX_WEIGHT": "net.losses",
    "head_losses": "net.losses",
    "describe_device": "device",
    "resolve_device": "device",
    "exclusive": "guard",
    "load_image": "data.images",
    "SOURCES": "weights.sources",
    "LoadedModel": "weights.card",
    "ModelCard": "weights.card",
    "load": "weights.loader",
    "load_checkpoint": "weights.checkpoint",
    "Analysis": "inspect.analysis",
    "analyze": "inspect.probe",
    "predict": "inspect.probe",
    "CostRow": "net.cost",
    "flops": "net.cost",
    "Design": "net.design",
    "compare_designs": "net.design",
    "paper_table": "net.table1",
    "table1_comparison": "net.table1",
    "totals": "net.cost",
    "GradientResult": "inspect.gradients",
    "compare_variants": "inspect.gradients",
    "layer_gradients": "inspect.gradients",
    "attribute": "inspect.attributions",
    "ablate": "inspect.ablation",
    "branch_importance": "inspect.ablation",
    "example_index": "inspect.examples",
    "visualize": "inspect.features",
    "visualize_many": "inspect.features",
    "upstream": "inspect.circuits",
    "downstream": "inspect.circuits",
    "contributions": "inspect.contributions",
    "families": "inspect.families",
    "TrainConfig": "train.config",
    "DistillConfig": "heads.distill",
    "distill_aux": "heads.distill",
    "evaluation_set": "inspect.evaluation",
    "head_logits": "heads.logits",
    "compare_heads": "heads.stats",
    "early_exits": "heads.early_exit",
    "exit_costs": "heads.early_exit",
    "in_domain": "heads.in_domain",
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
    from .data.images import load_image
    from .device import describe_device, resolve_device
    from .errors import (
        CheckpointError,
        DatasetError,
        DesignError,
        DeviceError,
        GNetError,
        ImageError,
        TargetError,
        WeightsError,
        WeightsNotFoundError,
    )
    from .guard import exclusive
    from .heads.distill import DistillConfig, distill_aux
    from .heads.early_exit import early_exits, exit_costs
    from .heads.in_domain import in_domain
    from .heads.logits import head_logits
    from .heads.stats import compare_heads
    from .inspect.ablation import ablate, branch_importance
    from .inspect.analysis import Analysis
    from .inspect.attributions import attribute
    from .inspect.circuits import downstream, upstream
    from .inspect.contributions import contributions
    from .inspect.evaluation import evaluation_set
    from .inspect.examples import example_index
    from .inspect.families import families
    from .inspect.features import visualize, visualize_many
    from .inspect.gradients import GradientResult, compare_variants, layer_gradients
    from .inspect.probe import analyze, predict
    from .net.cost import CostRow, flops, totals
    from .net.design import Design, compare_designs
    from .net.layers import AUX_ATTACH, BRANCHES, HEADS, INCEPTION_MODULES, WEIGHT_LAYERS, parse_channel
    from .net.losses import AUX_WEIGHT, head_losses
    from .net.model import INIT_SCHEMES, GoogLeNet, GoogLeNetConfig, HeadLogits, googlenet
    from .net.table1 import paper_table, table1_comparison
    from .train.config import TrainConfig
    from .weights.card import LoadedModel, ModelCard
    from .weights.checkpoint import load_checkpoint
    from .weights.loader import load
    from .weights.sources import SOURCES
