"""The design lab: GoogLeNet's design choices flipped one at a time, each measured on the built net.

The paper's choices (Szegedy et al. 2014, arXiv:1409.4842), and what flipping each one tests:

- the **stem** shrinks 224 px to 56 before the expensive layers (``stem="3x3"``, ``stem="vgg"``);
- the **1x1 reductions** before the 3x3 and 5x5 convolutions (``reductions=False``) and the pool
  branch's projection (``pool_proj=False``; both off: Figure 2a, the naive module);
- **global average pooling** and one linear layer instead of AlexNet's and VGG's dense layer on the
  flattened map (``classifier="fc"``);
- the **auxiliary heads**, trained with and dropped at test time (``aux=False``).

Every number comes from the built network: parameters from its tensors, multiply-adds from
:mod:`gnet.net.cost` (equal to ``torch.utils.flop_counter`` on every variant, pinned by tests),
activation memory from the tensors autograd saves for backward in one training step
(:func:`activation_bytes`), latency from timing forward and forward+backward passes interleaved
with the paper's design (:func:`measure_latency`). Batch norm, the fifth choice the course notes
discuss, is the Gradients page's (:mod:`gnet.inspect.gradients`).
"""

from __future__ import annotations

from .choices import (
    CHOICES,
    PAPER,
    STAGES,
    Design,
    DesignCost,
    check_design,
    cost_of,
    estimate_training_bytes,
    smallest_input_size,
    stage_of,
    stem_terms,
)
from .compare import Claim, DesignComparison, claims, compare_designs
from .measured import Latency, activation_bytes, measure_latency

__all__ = [
    "CHOICES",
    "PAPER",
    "STAGES",
    "Claim",
    "Design",
    "DesignComparison",
    "DesignCost",
    "Latency",
    "activation_bytes",
    "check_design",
    "claims",
    "compare_designs",
    "cost_of",
    "estimate_training_bytes",
    "measure_latency",
    "smallest_input_size",
    "stage_of",
    "stem_terms",
]
