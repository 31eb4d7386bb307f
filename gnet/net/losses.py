"""GoogLeNet's training loss: the main head's cross-entropy plus 0.3 x each auxiliary head's.

Szegedy et al. 2014 (arXiv:1409.4842), section 5: "During training, their loss gets added to
the total loss of the network with a discount weight (the losses of the auxiliary classifiers
were weighted by 0.3)." Training (:mod:`gnet.train.loop`) minimises :func:`head_losses`' ``total``;
the gradient study (:mod:`gnet.inspect.gradients`) compares the losses in :data:`LOSSES`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .layers import HEADS
from .model import HeadLogits

__all__ = ["AUX_WEIGHT", "LOSSES", "head_losses"]

AUX_WEIGHT = 0.3  # the paper's weight of each auxiliary loss (section 5)
# What the gradient study compares: each head alone, and "combined" = main + AUX_WEIGHT x (aux1 + aux2),
# the paper's loss. (Training's "total" is the same sum, or main alone when a run trains without aux.)
LOSSES: tuple[str, ...] = (*HEADS, "combined")


def head_losses(out: HeadLogits, y: Tensor, *, aux_weight: float = AUX_WEIGHT, aux: bool = True) -> dict[str, Tensor]:
    """Batch-mean cross-entropy of each head ("main", "aux1", "aux2") and the "total" trained on.

    total = main + ``aux_weight`` x (aux1 + aux2), the paper's loss (section 5); with
    ``aux=False`` it is the main loss alone.
    """
    losses = {head: F.cross_entropy(logits, y) for head, logits in zip(HEADS, out)}
    total = losses["main"]
    if aux:
        total = total + aux_weight * (losses["aux1"] + losses["aux2"])
    losses["total"] = total
    return losses
