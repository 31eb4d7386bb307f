"""The single forward pass that captures every Inception branch, the stem and the three heads.

Hooks live here and nowhere else. :func:`capture` registers forward hooks inside a
context manager and removes them in ``finally``; :func:`analyze` needs none (the model's
forward hands it the points of :func:`capture_points`) and holds the model's lock
(see :mod:`gnet.guard`) for the whole pass, so one model cached by Streamlit can serve
many sessions and threads at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.images import load_image
from ..data.preprocess import denormalize
from ..device import synchronize
from ..guard import exclusive
from ..net.layers import BRANCHES, HEADS, INCEPTION_MODULES, STEM_POINTS, ChannelTarget, branch_channels, submodule
from ..net.model import GoogLeNet
from ..weights.card import LoadedModel
from .analysis import Analysis, results, to_cpu

__all__ = [
    "STEM_POINTS",
    "analyze",
    "capture",
    "capture_points",
    "every_branch_knocked_out",
    "forward_to",
    "knocked_out",
    "predict",
]


def capture_points(net: GoogLeNet) -> dict[str, nn.Module]:
    """Every point the probe records: the stem layers, then each Inception module, in depth order.

    A module's output is its four branches concatenated along channels, so each branch's
    activation is a slice of it: one hook and one set of reductions per module, not per branch.
    """
    return {name: getattr(net, name) for name in STEM_POINTS} | net.inception_modules()


@contextmanager
def capture(
    net: nn.Module, points: dict[str, nn.Module], *, detach: bool = True, inputs: dict[str, Tensor] | None = None,
) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of ``points`` during forwards run inside the block.

    With ``inputs``, the same hooks also record there what each point read (its first input,
    detached): one hook per point for both, not two. The caller must hold the model (see
    :func:`gnet.guard.exclusive`) when the model is shared. Hooks are removed on exit, even when
    the forward raised.
    """
    store: dict[str, Tensor] = {}

    def hook_for(name: str):
        if inputs is None:
            def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
                store[name] = output.detach() if detach else output
        else:
            def hook(_module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
                store[name] = output.detach() if detach else output
                inputs[name] = args[0].detach()

        return hook

    with _hooked(points, hook_for):
        yield store


@contextmanager
def _hooked(points: dict[str, nn.Module], hook_for: Callable[[str], Callable[..., None]]) -> Iterator[None]:
    """``hook_for(name)`` as each point's forward hook inside the block, removed on exit even on error."""
    handles = []
    try:
        for name, module in points.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


class _Reached(Exception):
    """Raised by :func:`forward_to`'s hook to end a forward once its point has run."""


def forward_to(net: nn.Module, x: Tensor, point: str | nn.Module) -> Tensor:
    """``net``'s forward on ``x`` up to ``point`` (a point's name, e.g. ``inception4c`` or ``aux1``, or a submodule).

    Returns that point's output. The forward stops there, so what follows costs nothing: a
    feature visualization of an inception3a channel runs a quarter of the net. The output keeps its autograd graph. The
    caller must hold the model (see :func:`gnet.guard.exclusive`); the hook is removed even on error.
    """
    found: list[Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
        found.append(output)
        raise _Reached

    module = submodule(net, point) if isinstance(point, str) else point
    handle = module.register_forward_hook(hook)
    try:
        net(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not found:
        raise RuntimeError(f"{point!r} did not run in {type(net).__name__}'s forward")  # a bug, not a user's mistake
    return found[0]


@contextmanager
def knocked_out(net: nn.Module, knockouts: Iterable[ChannelTarget]) -> Iterator[None]:
    """Forwards inside the block see the given branches, or single channels, zeroed at their module's output.

    A branch's output is a slice of its module's output (:attr:`ChannelTarget.offset`), so one
    hook per module replaces that output with a copy whose knocked-out channels are zero: the
    same tensor a forward would give if those convolutions had output zeros. Knocking out all
    four branches of a module zeroes its whole output, which is allowed. The caller must hold
    the model (see :func:`gnet.guard.exclusive`); hooks are removed on exit, even on error.
    """
    channels: dict[str, set[int]] = {}
    for t in knockouts:
        width = branch_channels(t.module, t.branch)
        chosen = range(width) if t.channel is None else (t.channel,)
        channels.setdefault(t.module, set()).update(t.offset + c for c in chosen)
    handles = []

    def hook_for(index: Tensor):
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
            return output.index_fill(1, index.to(output.device), 0.0)

        return hook

    try:
        for module, zeroed in channels.items():
            index = torch.tensor(sorted(zeroed), dtype=torch.long)
            handles.append(submodule(net, module).register_forward_hook(hook_for(index)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def every_branch_knocked_out(net: nn.Module, images: int) -> Iterator[None]:
    """One forward of ``images`` images inside the block also runs them with each of the 36 branches knocked out.

    At each Inception module's output the batch fans out: four copies of the intact rows (the
    first ``images``) are appended, each with one branch zeroed, and travel on through the rest
    of the net. A knock-out thus shares everything below its module with the intact pass
    instead of recomputing it: a third of the work of 36 separate knocked-out forwards for
    GoogLeNet. Each head's output then holds ``images`` rows per block, in the order intact,
    ``inception3a.1x1``, ``inception3a.3x3``, ... (:data:`gnet.net.layers.BRANCH_POINTS` order), as
    far as the modules that head reads (13 blocks for aux1, 25 for aux2, 37 for main). Eval mode
    only: batch norm must not mix rows. The caller holds the model; hooks are removed on exit.
    """
    handles = []

    def hook_for(module: str):
        widths = [branch_channels(module, b) for b in BRANCHES]
        starts = [sum(widths[:i]) for i in range(len(widths))]

        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
            intact = output[:images]
            copies = [
                intact.index_fill(1, torch.arange(s, s + w, device=output.device), 0.0) for s, w in zip(starts, widths)
            ]
            return torch.cat([output, *copies])

        return hook

    try:
        for module in INCEPTION_MODULES:
            handles.append(submodule(net, module).register_forward_hook(hook_for(module)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def analyze(loaded: LoadedModel, image: Any, top: int = 5) -> Analysis:
    """Run one forward pass on ``image`` and return everything it computed.

    ``image`` is a path, bytes, a PIL image, or an already preprocessed tensor (3 x H x W or 1 x 3 x H x W).
    """
    t0 = time.perf_counter()
    if isinstance(image, Tensor):
        x = (image if image.dim() == 4 else image.unsqueeze(0)).to(loaded.device)
    else:
        x = loaded.preprocess(image)
    net = loaded.net
    store: dict[str, Tensor] = {}
    t_wait = time.perf_counter()
    with exclusive(net, training=False), torch.inference_mode():
        t1 = time.perf_counter()  # after the lock: waiting for another session is not forward time
        out = net(x, taps=store)  # the points of capture_points(net), stored by the forward itself: no hooks
        synchronize(loaded.device)
        t2 = time.perf_counter()
        names = list(store)
        # Activations, logits and the input reach the CPU in one copy, and the statistics are taken
        # there, in one compiled pass. The modules' outputs keep their batch dimension: a branch's
        # activation is taken from it when asked for.
        copied = to_cpu([*(store[name] for name in names), torch.cat(tuple(out)), x[0]])  # logits: heads x C
    acts = dict(zip(names, copied))
    modules, heads = results(acts, copied[-2], loaded.classes, top, loaded.card.heads_trained)
    t3 = time.perf_counter()
    x_cpu = copied[-1]
    mean, std = loaded.card.normalization["mean"], loaded.card.normalization["std"]
    return Analysis(
        card=loaded.card.to_dict(),
        device=loaded.device_name,
        input=x_cpu,
        image=denormalize(x_cpu, mean, std) if mean and std else x_cpu.permute(1, 2, 0).numpy(),
        stem={name: acts[name][0] for name in STEM_POINTS},
        modules=modules,
        heads=heads,
        timing_ms={
            "preprocess": (t_wait - t0) * 1e3,
            "wait": (t1 - t_wait) * 1e3,
            "forward": (t2 - t1) * 1e3,
            "statistics": (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3,
        },
    )


def predict(loaded: LoadedModel, images: Iterable[Any], *, batch_size: int = 32) -> dict[str, Tensor]:
    """Class probabilities of every head for many images (no capture), as {head: N x classes}."""
    tensors = [loaded.transform(load_image(im)) for im in images]
    if not tensors:
        return {h: torch.empty(0, len(loaded.classes)) for h in HEADS}
    probs: dict[str, list[Tensor]] = {h: [] for h in HEADS}
    with exclusive(loaded.net, training=False), torch.inference_mode():
        for i in range(0, len(tensors), batch_size):
            out = loaded.net(torch.stack(tensors[i : i + batch_size]).to(loaded.device))
            for h in HEADS:
                probs[h].append(F.softmax(getattr(out, h).float(), dim=-1).cpu())
    return {h: torch.cat(v) for h, v in probs.items()}
