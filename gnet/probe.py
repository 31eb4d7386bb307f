"""The single forward pass that captures every Inception branch, the stem and the three heads.

Hooks live here and nowhere else. :func:`capture` registers forward hooks inside a
context manager and removes them in ``finally``; :func:`analyze` holds the model's
lock (see :mod:`gnet.guard`) for the whole pass, so one model cached by Streamlit
can serve many sessions and threads at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .guard import exclusive
from .images import load_image
from .layers import BRANCH_POINTS, BRANCHES, HEADS, INCEPTION_MODULES, STEM_POINTS, ChannelTarget, branch_channels, submodule
from .model import GoogLeNet
from .preprocess import denormalize
from .weights import LoadedModel

__all__ = [
    "STEM_POINTS",
    "Analysis",
    "BranchResult",
    "HeadResult",
    "ModuleResult",
    "Prediction",
    "analyze",
    "capture",
    "capture_points",
    "every_branch_knocked_out",
    "forward_to",
    "knocked_out",
    "predict",
]

TOP_CHANNELS = 8  # most active channels kept per branch


def capture_points(net: GoogLeNet) -> dict[str, nn.Module]:
    """Every point the probe records: the stem layers, then each Inception module, in depth order.

    A module's output is its four branches concatenated along channels, so each branch's
    activation is a slice of it: one hook and one set of reductions per module, not per branch.
    """
    return {name: getattr(net, name) for name in STEM_POINTS} | net.inception_modules()


@contextmanager
def capture(net: nn.Module, points: dict[str, nn.Module], *, detach: bool = True) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of ``points`` during forwards run inside the block.

    The caller must hold the model (see :func:`gnet.guard.exclusive`) when the model is shared.
    Hooks are removed on exit, even when the forward raised.
    """
    store: dict[str, Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            store[name] = output.detach() if detach else output

        return hook

    try:
        for name, module in points.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield store
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
    ``inception3a.1x1``, ``inception3a.3x3``, ... (:data:`gnet.layers.BRANCH_POINTS` order), as
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


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    prob: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "prob": self.prob}


@dataclass
class BranchResult:
    """One branch's statistics, and its output (C x H x W, CPU): a slice of its module's output."""

    name: str
    module_output: Tensor = field(repr=False)  # the whole module's C x H x W output
    offset: int  # where the branch's channels start in it
    channels: int
    mean: float
    std: float
    zero_fraction: float
    energy: float
    energy_share: float
    top_channels: list[int]
    top_channel_means: list[float]

    @property
    def activation(self) -> Tensor:
        """The branch's output: a view, taken when asked for (36 views per analysis cost more than their statistics)."""
        return self.module_output[self.offset : self.offset + self.channels]

    def to_dict(self) -> dict[str, Any]:
        """The statistics (not the activation)."""
        return {
            "channels": self.channels,
            "mean": self.mean,
            "std": self.std,
            "zero_fraction": self.zero_fraction,
            "energy": self.energy,
            "energy_share": self.energy_share,
            "top_channels": self.top_channels,
        }


@dataclass
class ModuleResult:
    name: str
    output_shape: tuple[int, ...]
    branches: dict[str, BranchResult]


@dataclass
class HeadResult:
    """One classifier's output and how it relates to the main head."""

    name: str
    logits: Tensor
    probs: Tensor
    top: list[Prediction]
    entropy: float
    agrees_with_main: bool
    kl_to_main: float
    trained: bool

    def to_dict(self) -> dict[str, Any]:
        """Everything but the tensors: the top predictions and how the head relates to main."""
        return {
            "name": self.name,
            "top": [p.to_dict() for p in self.top],
            "entropy": self.entropy,
            "agrees_with_main": self.agrees_with_main,
            "kl_to_main": self.kl_to_main,
            "trained": self.trained,
        }


@dataclass
class Analysis:
    """Everything one forward pass revealed about one image. All tensors are detached, on the CPU."""

    card: dict[str, Any]
    device: str
    input: Tensor
    image: np.ndarray
    stem: dict[str, Tensor]
    modules: dict[str, ModuleResult]
    heads: dict[str, HeadResult]
    timing_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the tensors, as JSON-ready data (the CLI's ``analyze --json``)."""
        return {
            "model": self.card,
            "device": self.device,
            "heads": {name: [p.to_dict() for p in head.top] for name, head in self.heads.items()},
            "head_summary": {
                name: {
                    "entropy": h.entropy,
                    "agrees_with_main": h.agrees_with_main,
                    "kl_to_main": h.kl_to_main,
                    "trained": h.trained,
                }
                for name, h in self.heads.items()
            },
            "modules": {
                name: {
                    "output_shape": list(m.output_shape),
                    "branches": {b: r.to_dict() for b, r in m.branches.items()},
                }
                for name, m in self.modules.items()
            },
            "timing_ms": self.timing_ms,
        }


_JOINED_ELEMENTS = 1 << 16  # module outputs are concatenated up to this size (measured in bench/bench_speed.py)


def _channel_stats(outputs: Sequence[Tensor]) -> Tensor:
    """3 x (all channels) on the outputs' device: per-channel sum, sum of squares and non-zero count.

    Each reduction over H x W is a matrix-vector product with ones: on a CPU, BLAS's ``mv`` beats
    ``sum``, ``vector_norm`` and ``count_nonzero`` on these short rows. Small consecutive outputs of
    the same height and width are concatenated first (at 64 px: 3a-3b, 4a-4e, 5a-5b), so the net
    takes three reductions per run, not per module: for tiny tensors the cost is per call. Large
    outputs (224 px) are reduced one by one, which is faster than copying them into one.
    """
    runs: list[list[Tensor]] = []
    size = 0
    for out in outputs:
        if runs and runs[-1][0].shape[1:] == out.shape[1:] and size + out.numel() <= _JOINED_ELEMENTS:
            runs[-1].append(out)
            size += out.numel()
        else:
            runs.append([out])
            size = out.numel()
    rows = []
    for run in runs:
        flat = (torch.cat([out.flatten(1) for out in run]) if len(run) > 1 else run[0].flatten(1)).float()
        ones = flat.new_ones(flat.shape[1])
        rows.append(torch.stack((torch.mv(flat, ones), torch.mv(flat * flat, ones), torch.mv(flat.sign().abs_(), ones))))
    return torch.cat(rows, dim=1)


def _to_cpu(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The tensors on the CPU, through one copy (one host synchronisation on a GPU, not one per tensor)."""
    if not tensors or tensors[0].device.type == "cpu":
        return list(tensors)
    flat = torch.cat([t.float().reshape(-1) for t in tensors]).cpu()
    return [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


# The 36 branches in concatenation order (gnet.layers.BRANCH_POINTS) and where each one's channels
# sit: constants of the architecture, computed once (reading widths off the modules walks torch's
# __getattr__ hundreds of times, and per call this costs more than the statistics themselves).
_BRANCH_WIDTHS = np.array([branch_channels(p.module, p.branch) for p in BRANCH_POINTS])
_BRANCH_STARTS = np.cumsum(np.concatenate(([0], _BRANCH_WIDTHS[:-1])))  # in the concatenation of all modules
_BRANCH_OFFSETS = (_BRANCH_STARTS - np.repeat(_BRANCH_STARTS[:: len(BRANCHES)], len(BRANCHES))).tolist()  # in its module
_KEEP = np.minimum(_BRANCH_WIDTHS, TOP_CHANNELS).tolist()
# Each channel's branch, and its cell in a branches x widest-branch grid, for ranking all branches at once.
_GRID_ROWS = np.repeat(np.arange(len(_BRANCH_WIDTHS)), _BRANCH_WIDTHS)
_GRID_CELLS = _GRID_ROWS * _BRANCH_WIDTHS.max() + np.concatenate([np.arange(w) for w in _BRANCH_WIDTHS])


def _module_results(acts: dict[str, Tensor], stats: np.ndarray) -> dict[str, ModuleResult]:
    """Every module's per-branch statistics from :func:`_channel_stats`' 3 x (all channels) array.

    All 36 branches at once, as array arithmetic; only the result objects are built one by one.
    """
    widths = _BRANCH_WIDTHS
    hw = np.repeat(np.array([acts[m].shape[1] * acts[m].shape[2] for m in INCEPTION_MODULES]), len(BRANCHES))
    sums, energies, nonzeros = np.add.reduceat(stats, _BRANCH_STARTS, axis=1)  # one value per branch
    counts = widths * hw
    means = sums / counts
    stds = np.sqrt(np.maximum(energies / counts - means**2, 0.0) * counts / np.maximum(counts - 1, 1))  # unbiased
    module_energy = np.repeat(energies.reshape(-1, len(BRANCHES)).sum(1), len(BRANCHES))
    shares = np.divide(energies, module_energy, out=np.zeros_like(energies), where=module_energy > 0)
    # Each branch's channel means, padded to the widest branch, ranked in one call (stable: ties keep channel order).
    padded = np.full(len(widths) * widths.max(), np.inf)
    padded[_GRID_CELLS] = -stats[0] / hw[_GRID_ROWS]
    order = np.argsort(padded.reshape(len(widths), -1), axis=1, kind="stable")[:, :TOP_CHANNELS]
    top_means = -padded[order + np.arange(0, padded.size, widths.max())[:, None]]
    columns = zip(BRANCH_POINTS, _BRANCH_OFFSETS, _BRANCH_WIDTHS.tolist(), means.tolist(), stds.tolist(),
                  (1.0 - nonzeros / counts).tolist(), energies.tolist(), shares.tolist(), order.tolist(),
                  top_means.tolist(), _KEEP)
    results: dict[str, dict[str, BranchResult]] = {m: {} for m in INCEPTION_MODULES}
    for point, offset, width, mean, std, zeros, energy, share, top, top_mean, keep in columns:
        results[point.module][point.branch] = BranchResult(
            name=point.branch, module_output=acts[point.module], offset=offset, channels=width, mean=mean, std=std,
            zero_fraction=zeros, energy=energy, energy_share=share, top_channels=top[:keep],
            top_channel_means=top_mean[:keep],
        )
    return {m: ModuleResult(m, tuple(acts[m].shape), branches) for m, branches in results.items()}


def _head_results(logits: dict[str, Tensor], classes: Sequence[str], top: int, trained: dict[str, bool]):
    """Each head's top-k, entropy, agreement with and KL divergence to the main head, in a few batched ops.

    In float64, which costs nothing for 3 x classes numbers: the KL of two close heads is a small
    difference of large terms, and float32 got its fourth digit wrong.
    """
    k = min(top, len(classes))
    stacked = torch.stack([logits[h].double() for h in HEADS])  # 3 x C, main first
    log_probs = F.log_softmax(stacked, dim=-1)
    probs = log_probs.exp()
    values, indices = torch.topk(probs, k, dim=-1)
    entropy = -(probs * log_probs).sum(-1)
    # KL(main || head): how much the head's distribution misses the main head's.
    kl = (probs[0] * (log_probs[0] - log_probs)).sum(-1)
    top1 = indices[:, 0]
    values, indices, entropy, kl, top1 = (t.tolist() for t in (values, indices, entropy, kl, top1))
    probs = probs.float()
    results = {}
    for i, h in enumerate(HEADS):
        results[h] = HeadResult(
            name=h,
            logits=logits[h],
            probs=probs[i],
            top=[Prediction(c, classes[c], p) for p, c in zip(values[i], indices[i])],
            entropy=entropy[i],
            agrees_with_main=top1[i] == top1[0],
            kl_to_main=kl[i],
            trained=trained.get(h, False),
        )
    return results


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
    points = capture_points(net)
    t_wait = time.perf_counter()
    with exclusive(net, training=False), torch.inference_mode(), capture(net, points) as store:
        t1 = time.perf_counter()  # after the lock: waiting for another session is not forward time
        out = net(x)
        if loaded.device.type == "cuda":
            torch.cuda.synchronize(loaded.device)
        t2 = time.perf_counter()
        names = list(store)
        stats = _channel_stats([store[name][0] for name in INCEPTION_MODULES])
        # Activations, logits, the statistics and the input reach the CPU in one copy.
        copied = _to_cpu([*(store[name][0] for name in names), *(h[0] for h in out), stats, x[0]])
    acts = dict(zip(names, copied))
    modules = _module_results(acts, copied[-2].double().numpy())
    heads = _head_results(dict(zip(HEADS, copied[len(names) : len(names) + len(HEADS)])), loaded.classes, top,
                          loaded.card.heads_trained)
    t3 = time.perf_counter()
    x_cpu = copied[-1]
    mean, std = loaded.card.normalization["mean"], loaded.card.normalization["std"]
    return Analysis(
        card=loaded.card.to_dict(),
        device=loaded.device_name,
        input=x_cpu,
        image=denormalize(x_cpu, mean, std) if mean and std else x_cpu.permute(1, 2, 0).numpy(),
        stem={name: acts[name] for name in STEM_POINTS},
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
