"""What the design lab measures on the built net: the activation memory autograd saves in one training
step (:func:`activation_bytes`) and latency, interleaved with the paper's design (:func:`measure_latency`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ...device import available_memory, memory_format, resolve_device, synchronize
from ...errors import DesignError
from ..layers import HEADS
from ..losses import AUX_WEIGHT
from ..model import SINGLE_IMAGE_MIN_SIZE, GoogLeNet, batch_statistics_defined
from .choices import PAPER, Design, DesignCost, cost_of, estimate_training_bytes

def _refuse_if_too_large(cost: DesignCost, batch_size: int, device: torch.device) -> None:
    if not batch_statistics_defined(batch_size, cost.input_size):
        raise DesignError(
            f"A training step of one image at {cost.input_size} px leaves batch norm one value per channel: time a "
            f"batch of 2 or more, or use {SINGLE_IMAGE_MIN_SIZE} px or more."
        )
    need, free = estimate_training_bytes(cost, batch_size), available_memory(device)
    if free is not None and need > free:
        raise DesignError(
            f"The {cost.design.name} design at {cost.input_size} px and batch {batch_size} needs up to "
            f"{need / 2**30:.1f} GiB for a training step and {device.type} has {free / 2**30:.1f} GiB free: "
            "use a smaller batch or input size."
        )


def _built(design: Design, input_size: int, num_classes: int, device: torch.device) -> GoogLeNet:
    net = GoogLeNet(design.config(num_classes=num_classes, input_size=input_size))
    return net.to(device, memory_format=memory_format(device))


def _loss(net: GoogLeNet, x: torch.Tensor, y: torch.Tensor, aux: bool) -> torch.Tensor:
    # The paper's training loss: main + 0.3 x each auxiliary loss (gnet.net.losses.AUX_WEIGHT).
    out = net(x)
    losses = [nn.functional.cross_entropy(logits, y) for logits in out]
    return losses[0] + AUX_WEIGHT * (losses[1] + losses[2]) if aux else losses[0]


def activation_bytes(
    design: Design, *, input_size: int = 224, num_classes: int = 1000, batch_size: int = 1,
    device: str | torch.device | None = "cpu",
) -> dict[str, int]:
    """Bytes of the tensors autograd saves for backward in one training step, measured.

    Every tensor packed by ``torch.autograd.graph.saved_tensors_hooks`` is counted once per storage
    (a ReLU's output that the next convolution also saves is one buffer), parameters excluded.
    Returns ``{"trunk": ..., "aux": ...}``: ``aux`` holds what only the auxiliary heads save, which a
    design trained without them does not allocate (this forward computes them in any case).
    """
    dev = resolve_device(device)
    cost = cost_of(design, input_size=input_size, num_classes=num_classes)
    _refuse_if_too_large(cost, batch_size, dev)
    net = _built(design, input_size, num_classes, dev).train()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    owners: dict[int, tuple[int, set[str]]] = {}  # storage -> (bytes, who saved it)
    inside: list[str] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            owners.setdefault(ptr, (storage.nbytes(), set()))[1].add(inside[-1] if inside else "trunk")
        return t

    def enter(module: nn.Module, args: tuple, head: str) -> None:
        inside.append(head)

    def leave(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        inside.pop()

    handles = []
    for head in HEADS[1:]:
        aux = net.get_submodule(head)
        handles.append(aux.register_forward_pre_hook(lambda m, a, head=head: enter(m, a, head)))
        handles.append(aux.register_forward_hook(leave))
    x = torch.randn(batch_size, 3, input_size, input_size, device=dev).contiguous(memory_format=memory_format(dev))
    y = torch.zeros(batch_size, dtype=torch.long, device=dev)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = _loss(net, x, y, aux=True)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    trunk = sum(n for n, who in owners.values() if "trunk" in who)
    return {"trunk": trunk, "aux": sum(n for n, who in owners.values() if "trunk" not in who)}


@dataclass(frozen=True)
class Latency:
    """Median seconds of one forward (eval, no autograd) and one training step (forward + backward) per
    design and batch size, timed interleaved with the paper's design; ``ratio`` divides by the paper's."""

    device: str
    input_size: int
    repeats: int
    rows: list[dict]  # design, batch_size, pass ("forward" or "train step"), median_s, min_s, max_s, ratio

    def to_dict(self) -> dict:
        return asdict(self)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure_latency(
    designs: Iterable[Design], *, input_size: int = 224, num_classes: int = 1000,
    batch_sizes: Iterable[int] = (1, 32), repeats: int = 5, device: str | torch.device | None = None,
    progress: Callable[[float], None] | None = None,
) -> Latency:
    """Time each design against the paper's, interleaved (paper, design, paper, design, ...) so that a
    shared machine's drift hits both alike; one untimed warm-up pass of each first.

    Every design is checked and its memory estimated (:func:`estimate_training_bytes`) before any net is
    built: a design that would not fit raises :class:`DesignError`.
    """
    dev = resolve_device(device)
    designs = [PAPER, *(d for d in designs if d != PAPER)]
    batch_sizes = list(batch_sizes)
    for d in designs:
        cost = cost_of(d, input_size=input_size, num_classes=num_classes)
        for b in batch_sizes:
            _refuse_if_too_large(cost, b, dev)
    times: dict[tuple[str, int, str], list[float]] = {}
    total, done = len(designs) * len(batch_sizes) * (repeats + 1), 0
    nets = {d: _built(d, input_size, num_classes, dev) for d in designs}
    for b in batch_sizes:
        x = torch.randn(b, 3, input_size, input_size, device=dev).contiguous(memory_format=memory_format(dev))
        y = torch.zeros(b, dtype=torch.long, device=dev)
        for rep in range(repeats + 1):  # repeat 0 warms up
            for d, net in nets.items():
                def forward() -> None:
                    with torch.inference_mode():
                        net.eval()(x)

                def train_step() -> None:
                    net.train().zero_grad(set_to_none=True)
                    _loss(net, x, y, d.aux).backward()

                for kind, fn in (("forward", forward), ("train step", train_step)):
                    seconds = _timed(fn, dev)
                    if rep:
                        times.setdefault((d.name, b, kind), []).append(seconds)
                done += 1
                if progress is not None:
                    progress(done / total)
    rows = []
    for (name, b, kind), values in times.items():
        base = statistics.median(times[(PAPER.name, b, kind)])
        rows.append({
            "design": name, "batch_size": b, "pass": kind, "median_s": statistics.median(values),
            "min_s": min(values), "max_s": max(values), "ratio": statistics.median(values) / base,
        })
    return Latency(device=str(dev), input_size=input_size, repeats=repeats, rows=rows)
