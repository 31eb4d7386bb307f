"""Which connections of a circuit are used: a channel's activation attributed to the channels of the module below.

:mod:`gnet.inspect.circuits` reads what the weights connect; this module measures what a real
input uses, through the real network (ReLUs and max-pools included). It uses captum's
integrated gradients from an all-zero output of the module below: unlike activation x
gradient, which it equals on a linear path, its contributions sum to the activation minus the
activation at that baseline (completeness) through the ReLU inside the branch too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..guard import exclusive
from ..net.layers import BRANCHES, ChannelTarget, module_channels
from ..weights.card import LoadedModel
from .circuits import DEFAULT_K, Circuit, below, check_k, expanded_weights, module_row, ranked, target_channel
from .evaluation import LabelledImages, batch_size_for, evaluation_set
from .probe import forward_to

__all__ = ["INTEGRATION_STEPS", "contributions"]

INTEGRATION_STEPS = 32  # integrated gradients' Riemann steps: completeness within ~1e-3 of the activation here
Progress = Callable[[float], None]



def _between(net: nn.Module, source: str, module: str) -> Callable[[Tensor], Tensor]:
    """What the net does between ``source``'s output and ``module``'s input: a max-pool, or nothing."""
    names = [n for n, _ in net.named_children()]
    between = names[names.index(source) + 1 : names.index(module)]
    pools = [getattr(net, n) for n in between if isinstance(getattr(net, n), nn.MaxPool2d)]
    return pools[0] if pools else (lambda x: x)


def contributions(
    loaded: LoadedModel,
    target: ChannelTarget | str,
    images: Tensor | LabelledImages | None = None,
    *,
    k: int = DEFAULT_K,
    limit: int | None = 256,
    steps: int = INTEGRATION_STEPS,
    progress: Progress | None = None,
) -> Circuit:
    """How much of ``target``'s activation each channel of the module below accounts for, on real inputs.

    Args:
        images: a batch of preprocessed inputs (N x 3 x S x S), or a labelled set (its first
            ``limit`` images), or None: the weights' evaluation set
            (:func:`gnet.inspect.evaluation.evaluation_set`, first ``limit`` images).
        k: connections shown each way, ranked by mean contribution.
        steps: integrated gradients' steps.

    The target's value is its spatial-mean activation after its ReLU. Contributions are
    integrated gradients (captum) at the module below's output from an all-zero output, summed
    over positions and averaged over images; they sum to ``data["activation"] -
    data["baseline"]`` up to ``data["delta"]`` (captum's convergence delta, mean absolute per image).
    Every connection keeps its expanded-weight kernel, so what exists and what is used can be read side by side.
    """
    from captum.attr import IntegratedGradients

    t0 = time.perf_counter()
    target = target_channel(target)
    source = below(target.module)
    in_channels = module_channels(source)
    check_k(k, in_channels)
    if images is None:
        images = evaluation_set(loaded, limit=limit)
    if isinstance(images, LabelledImages):
        data_name = images.name
        count = len(images) if limit is None else min(limit, len(images))
        size = batch_size_for(loaded.card.input_size, at_64=64)
        batches = [images.inputs(list(range(s, min(s + size, count)))) for s in range(0, count, size)]
    else:
        data_name, batches = "the image", [images]
    net = loaded.net
    inception = getattr(net, target.module)
    pool = _between(net, source, target.module)
    branch = getattr(inception, BRANCHES[target.branch])
    channel = target.channel

    def value(a: Tensor) -> Tensor:
        out = branch(pool(a))  # N x C x H x W, after the branch's ReLU
        return out[:, channel].mean(dim=(1, 2))

    total = sum(len(b) for b in batches)
    summed = torch.zeros(in_channels, dtype=torch.float64)
    activation = baseline = delta = 0.0
    done = 0
    with exclusive(net, training=False):
        kernels = expanded_weights(inception)[module_row(target)].cpu()
        ig = IntegratedGradients(value)
        for x in batches:
            with torch.no_grad():
                a = forward_to(net, x.to(loaded.device), source)
            zero = torch.zeros_like(a)
            with torch.enable_grad():
                attr, gap = ig.attribute(a, baselines=zero, n_steps=steps, return_convergence_delta=True)
            with torch.no_grad():
                activation += float(value(a).sum())
                baseline += float(value(zero).sum())
            summed += attr.sum(dim=(2, 3)).sum(0).double().cpu()
            delta += float(gap.abs().sum())
            done += len(x)
            if progress is not None:
                progress(done / total)
    mean = (summed / total).float()
    excite, inhibit = ranked(mean, kernels, source, k, contributions=mean)
    data = {
        "images": total,
        "set": data_name,
        "activation": activation / total,
        "baseline": baseline / total,
        "sum_of_contributions": float(mean.sum()),
        "delta": delta / total,
        "steps": steps,
    }
    return Circuit(target.name, "upstream", source, "integrated_gradients", excite, inhibit, data=data,
                   approximation="none: the real network, ReLUs and max-pools included",
                   seconds=time.perf_counter() - t0)
