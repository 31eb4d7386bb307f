"""Thin adapters over captum: which input pixels (or which branch positions) a head's class depends on.

Three methods, one function each, all returning an H x W heatmap in [0, 1] ready to
overlay on the image the model saw:

- :func:`integrated_gradients`: Integrated Gradients (Sundararajan et al. 2017,
  arXiv:1703.01365) averaged over noisy copies of the input with captum's
  ``NoiseTunnel`` (SmoothGrad, Smilkov et al. 2017, arXiv:1706.03825).
- :func:`saliency`: the absolute input gradient (Simonyan et al. 2013, arXiv:1312.6034).
- :func:`grad_cam`: Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391) on the last
  convolution block of one branch of one Inception module.

The explained score is the logit of ``target`` in one head (``main``, ``aux1`` or
``aux2``), so the auxiliary classifiers can be explained like the main one. Every
method runs inside :func:`gnet.guard.exclusive` (the model may be shared by many
threads) and removes every hook captum or a failing forward left behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from torch import Tensor, nn

from ..device import synchronize
from ..guard import exclusive, seeded
from ..net.layers import HEADS, modules_read_by, parse_channel, submodule
from ..net.model import GoogLeNet
from ..weights.card import LoadedModel

__all__ = [
    "GRAD_CAM_BRANCH",
    "GRAD_CAM_MIN_SIZE",
    "GRAD_CAM_MODULE",
    "IG_MAX_SAMPLES",
    "IG_MAX_STEPS",
    "IG_MEMORY_BYTES",
    "METHODS",
    "Attribution",
    "IGPlan",
    "Stopped",
    "attribute",
    "evidence_elsewhere",
    "branch_layer",
    "grad_cam",
    "grad_cam_module",
    "ig_internal_batch",
    "integrated_gradients",
    "plan_integrated_gradients",
    "normalize_heatmap",
    "saliency",
    "time_forward_backward",
]

# Memory one batch of Integrated Gradients' path points may take: their activations and gradients.
# All the steps of one noisy copy go through the net at once when they fit (fastest); a large
# input splits them into internal batches.
IG_MEMORY_BYTES = 1 << 30
IG_MAX_STEPS = 64  # path points per noisy copy (captum's default is 50)
IG_MAX_SAMPLES = 16  # noisy copies (SmoothGrad)
# The branch Grad-CAM starts on. Grad-CAM keeps only positive evidence, and on the bundled net each
# head's top-1 class left inception4e.3x3 empty for main on 50 of 100 test images; the 1x1 branch was
# empty on 0 for main, 0 for aux2 (4d) and 2 for aux1 (4a), against 50, 5 and 0 for the 3x3
# (bench/grad_cam_empty.py). pool_proj, never empty either, is spread over most of the image.
GRAD_CAM_BRANCH = "1x1"
# The module Grad-CAM explains main on when none is named: the deepest one whose maps are 4 x 4 at
# the bundled net's 64 px (inception5a and 5b are 2 x 2). grad_cam_module picks it per head and size.
GRAD_CAM_MODULE = "inception4e"
GRAD_CAM_MIN_SIZE = 4  # a 2 x 2 map says little about where in the image the evidence is


def evidence_elsewhere(module: str, branches: Sequence[str]) -> str:
    """Which other branches of ``module`` find evidence, as a clause, after one branch's Grad-CAM map came out empty.

    ``branches`` are those whose maps (same head and class) are not empty. The Attributions page and
    ``gnet attribute`` each add how to pick one: "on inception4e, 1x1 and pool_proj do".
    """
    if not branches:
        return f"no other branch of {module} does either"
    named = branches[0] if len(branches) == 1 else f"{', '.join(branches[:-1])} and {branches[-1]}"
    return f"on {module}, {named} {'does' if len(branches) == 1 else 'do'}"


def grad_cam_module(head: str, shapes: Mapping[str, Sequence[int]]) -> str:
    """Where Grad-CAM starts for ``head``: the deepest module it reads whose maps are at least
    :data:`GRAD_CAM_MIN_SIZE` high (the deepest it reads when none is), given each module's C x H x W."""
    readable = modules_read_by(head)
    sharp = [name for name in readable if shapes[name][1] >= GRAD_CAM_MIN_SIZE]
    return (sharp or readable)[-1]

METHODS: dict[str, str] = {
    "integrated_gradients": "Integrated Gradients + NoiseTunnel",
    "saliency": "Saliency",
    "grad_cam": "Grad-CAM (one branch)",
}
_CLIP_PERCENTILE = 99.0  # a few extreme pixels would otherwise wash out the whole map

Progress = Callable[[float], "bool | None"]  # fraction done -> False to stop


class Stopped(Exception):
    """The caller's progress callback asked to stop; nothing was computed past that point."""


@dataclass(frozen=True)
class IGPlan:
    """Integrated Gradients settings that fit a time budget, with the estimate they rest on."""

    n_steps: int
    nt_samples: int
    seconds: float  # estimated time of the whole computation
    requested: tuple[int, int]  # (n_steps, nt_samples) asked for
    budget_s: float

    @property
    def clamped(self) -> bool:
        return (self.n_steps, self.nt_samples) != self.requested

    @property
    def notice(self) -> str:
        """One sentence for the user when the request was clamped ("" otherwise)."""
        if not self.clamped:
            return ""
        steps, samples = self.requested
        return (
            f"{steps} steps x {samples} samples would take about {self.seconds_for(steps, samples):.0f} s here, over "
            f"the {self.budget_s:.0f} s one request may take; running {self.n_steps} x {self.nt_samples} instead "
            f"(about {self.seconds:.0f} s)."
        )

    def seconds_for(self, n_steps: int, nt_samples: int) -> float:
        per_pass = self.seconds / (self.n_steps * self.nt_samples)
        return per_pass * n_steps * nt_samples


def plan_integrated_gradients(n_steps: int, nt_samples: int, seconds_per_pass: float, budget_s: float) -> IGPlan:
    """Clamp (``n_steps``, ``nt_samples``) into the sliders' range and into ``budget_s`` seconds.

    ``seconds_per_pass`` is one forward and backward of one image, measured on this machine
    (:func:`time_forward_backward`). Samples are cut first (each one is a full path), then steps,
    never below 4 steps and 1 sample.
    """
    steps = min(max(n_steps, 2), IG_MAX_STEPS)
    samples = min(max(nt_samples, 1), IG_MAX_SAMPLES)
    requested = (n_steps, nt_samples)
    while samples > 1 and steps * samples * seconds_per_pass > budget_s:
        samples -= 1
    while steps > 4 and steps * samples * seconds_per_pass > budget_s:
        steps -= 4 if steps > 8 else 1
    return IGPlan(steps, samples, steps * samples * seconds_per_pass, requested, budget_s)


def time_forward_backward(net: GoogLeNet, x: Tensor, *, batch: int = 8, repeats: int = 2) -> float:
    """Seconds for one image's forward and backward through ``net``, timed on a batch of copies of ``x``.

    The fastest of ``repeats`` timings, divided by ``batch``: what one of Integrated Gradients'
    path points costs on this machine and device.
    """
    inputs = x.detach().expand(batch, *x.shape[1:]).clone().requires_grad_(True)
    best = float("inf")
    with _explaining(net):
        for _ in range(repeats + 1):  # the first run warms caches and allocators up
            start = time.perf_counter()
            out = _head_forward(net, "main")(inputs)  # as the attributions run it
            (grad,) = torch.autograd.grad(out[:, 0].sum(), inputs)
            synchronize(grad.device)
            best = min(best, time.perf_counter() - start)
    return best / batch


def ig_internal_batch(net: GoogLeNet, x: Tensor, n_steps: int, budget_bytes: int = IG_MEMORY_BYTES) -> int:
    """How many of ``n_steps`` images (path points, of one or several noisy copies) fit in
    ``budget_bytes`` at once (all of them when they fit).

    An image's forward keeps every layer's output for the backward, and the backward makes a
    gradient of the same size: about 2 x 4 bytes per activation, counted from :func:`gnet.net.cost.flops`.
    """
    from ..net.cost import flops

    activations = sum(math.prod(row.out_shape) for row in flops(net, int(x.shape[-1])))
    per_image = 8 * activations
    return max(1, min(n_steps, budget_bytes // per_image))


@dataclass(frozen=True)
class Attribution:
    """One method's heatmap for one head's class, with what produced it."""

    method: str
    head: str
    target: int
    target_label: str
    heatmap: np.ndarray  # H x W in [0, 1], the input's height and width
    layer: str | None  # "<module>.<branch>" for Grad-CAM, else None
    seconds: float

    @property
    def blank(self) -> bool:
        """Whether the map is zero everywhere: for Grad-CAM, the branch's gradient-weighted maps are
        negative at every position and its ReLU keeps none (inception4e.3x3, 4 x 4 at 64 px, on a sample shirt)."""
        return not self.heatmap.any()

    @property
    def title(self) -> str:
        where = f" on {self.layer}" if self.layer else ""
        return f"{METHODS[self.method]}{where}: {self.head} -> {self.target_label}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "head": self.head,
            "target": self.target,
            "target_label": self.target_label,
            "layer": self.layer,
            "seconds": self.seconds,
            "heatmap_shape": list(self.heatmap.shape),
        }


def _head_forward(net: nn.Module, head: str) -> Callable[[Tensor], Tensor]:
    """The forward captum differentiates: ``net``'s logits of one head (N x classes)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")

    def forward(x: Tensor) -> Tensor:
        # On a CPU a loaded net's weights are channels_last (gnet.device.memory_format), so oneDNN
        # runs captum's contiguous batches in that layout too.
        return getattr(net(x), head)

    return forward


def _hook_dicts(module: nn.Module) -> tuple[dict, ...]:
    return (
        module._forward_hooks,
        module._forward_pre_hooks,
        module._backward_hooks,
        module._backward_pre_hooks,
    )


@contextmanager
def _leave_no_hooks(net: nn.Module) -> Iterator[None]:
    """Remove, on exit, every hook registered on ``net``'s modules inside the block.

    captum removes its own hooks in ``finally``; this makes it a guarantee for the
    shared model whatever captum version or failure path runs.
    """
    before = {m: [set(d) for d in _hook_dicts(m)] for m in net.modules()}
    try:
        yield
    finally:
        for m, kept in before.items():
            for hooks, keys in zip(_hook_dicts(m), kept):
                for key in [k for k in hooks if k not in keys]:
                    del hooks[key]


@contextmanager
def _explaining(net: nn.Module) -> Iterator[None]:
    """Exclusive use of ``net`` in eval mode, gradients on, no hook left behind."""
    with exclusive(net, training=False), _leave_no_hooks(net), torch.enable_grad():
        yield


def normalize_heatmap(attr: Tensor) -> np.ndarray:
    """An N x C x H x W (or C x H x W, or H x W) attribution -> H x W float32 in [0, 1].

    Channels are summed in absolute value; values above the 99th percentile are clipped.
    """
    a = attr.detach().float().cpu()
    while a.dim() > 3:
        a = a[0]
    if a.dim() == 3:
        a = a.abs().sum(0)
    a = a.abs()
    top = float(np.percentile(a.numpy(), _CLIP_PERCENTILE)) if a.numel() else 0.0
    if top <= 0:
        top = float(a.max()) if a.numel() else 0.0
    if top <= 0:
        return np.zeros(tuple(a.shape), dtype=np.float32)
    return (a.clamp(max=top) / top).numpy().astype(np.float32)


def _input(x: Tensor) -> Tensor:
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image as a 1 x 3 x H x W tensor, got shape {tuple(x.shape)}")
    return x.detach().clone().requires_grad_(True)


def integrated_gradients(
    net: GoogLeNet,
    x: Tensor,
    target: int,
    *,
    head: str = "main",
    n_steps: int = 16,
    nt_samples: int = 4,
    stdevs: float = 0.15,
    internal_batch_size: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """Integrated Gradients from captum's zero baseline, smoothed by ``nt_samples`` noisy copies.

    Zero is taken in normalized input space: the baseline is the training data's mean colour, not black.

    captum's ``NoiseTunnel`` runs the noisy copies in groups, as many at once as fit in
    :data:`IG_MEMORY_BYTES` with all their path points (:func:`ig_internal_batch`), so that
    ``progress`` can report each group; the groups' SmoothGrad average is the same estimator as
    one call with ``nt_samples``. A given ``internal_batch_size`` runs one copy at a time, that
    many path points per pass (it bounds memory). The noise is seeded, so equal calls give equal maps.
    ``progress`` returning False stops the computation between two noisy copies
    (:class:`Stopped` is raised).
    """
    if nt_samples < 1 or n_steps < 2:
        raise ValueError("nt_samples must be >= 1 and n_steps >= 2")
    inputs = _input(x)
    if internal_batch_size is None:
        # As many noisy copies at once as fit in memory with all their path points (at 64 px, all
        # of them: one pass, as captum's own single call would take), else path points alone.
        fit = ig_internal_batch(net, inputs, n_steps * nt_samples)
        group = max(1, min(nt_samples, fit // n_steps))
        internal_batch_size = fit if group == 1 else group * n_steps
    else:
        group = 1
    total = torch.zeros_like(inputs)
    done = 0
    with _explaining(net), seeded(seed, inputs.device):
        tunnel = NoiseTunnel(IntegratedGradients(_head_forward(net, head)))
        while done < nt_samples:
            copies = min(group, nt_samples - done)
            total += copies * tunnel.attribute(
                inputs,
                nt_type="smoothgrad",
                nt_samples=copies,
                nt_samples_batch_size=copies,
                stdevs=stdevs,
                target=target,
                n_steps=n_steps,
                internal_batch_size=internal_batch_size,
            ).detach()
            done += copies
            if progress is not None and progress(done / nt_samples) is False and done < nt_samples:
                raise Stopped(f"stopped after {done} of {nt_samples} noisy copies")
    return normalize_heatmap(total / nt_samples)


def saliency(net: GoogLeNet, x: Tensor, target: int, *, head: str = "main") -> np.ndarray:
    """The absolute gradient of the head's ``target`` logit with respect to each input pixel."""
    inputs = _input(x)
    with _explaining(net):
        attr = Saliency(_head_forward(net, head)).attribute(inputs, target=target, abs=True)
    return normalize_heatmap(attr)


def branch_layer(net: GoogLeNet, module: str, branch: str) -> nn.Module:
    """One branch of one Inception module: where Grad-CAM reads activations and gradients.

    Raises :class:`~gnet.errors.TargetError` naming the valid modules or branches.
    """
    return submodule(net, parse_channel(f"{module}.{branch}").name)


def grad_cam(net: GoogLeNet, x: Tensor, target: int, *, module: str, branch: str, head: str = "main") -> np.ndarray:
    """Grad-CAM on one branch, upsampled to the input's size.

    ``module`` must be one the head reads (see :func:`modules_read_by`): a later
    module never influences an auxiliary head, so it has no gradient to show.
    """
    inputs = _input(x)
    layer = branch_layer(net, module, branch)
    if module not in modules_read_by(head):
        raise ValueError(f"{head} branches off before {module}, so {module} cannot explain it")
    with _explaining(net):
        cam = LayerGradCam(_head_forward(net, head), layer).attribute(inputs, target=target, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam.detach(), tuple(inputs.shape[-2:]), interpolate_mode="bilinear")
    return normalize_heatmap(F.relu(cam))


def attribute(
    loaded: LoadedModel,
    x: Tensor,
    method: str,
    *,
    head: str = "main",
    target: int | None = None,
    module: str = GRAD_CAM_MODULE,
    branch: str = GRAD_CAM_BRANCH,
    progress: Progress | None = None,
    **options: Any,
) -> Attribution:
    """Run one method on a preprocessed 1 x 3 x H x W input for one head's class.

    ``target`` defaults to that head's top-1 class. ``options`` go to
    :func:`integrated_gradients` (``n_steps``, ``nt_samples``, ...).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    net = loaded.net
    x = x.to(loaded.device)
    if target is None:
        with exclusive(net, training=False), torch.inference_mode():
            target = int(getattr(net(x), head if head in HEADS else "main")[0].argmax())
    t0 = time.perf_counter()
    layer = None
    if method == "integrated_gradients":
        heatmap = integrated_gradients(net, x, target, head=head, progress=progress, **options)
    elif method == "saliency":
        heatmap = saliency(net, x, target, head=head)
    else:
        heatmap = grad_cam(net, x, target, module=module, branch=branch, head=head)
        layer = f"{module}.{branch}"
    if progress is not None and method != "integrated_gradients":
        progress(1.0)
    return Attribution(
        method=method,
        head=head,
        target=target,
        target_label=loaded.classes[target],
        heatmap=heatmap,
        layer=layer,
        seconds=time.perf_counter() - t0,
    )
