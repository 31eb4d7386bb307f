"""Every library hot path of issue 14 as a ratio to its floor, each measured in one interleaved run.

    .venv/bin/python bench/bench_speed.py [--repeats 21] [--device cpu] [--threads 1,2]
        [--rows analyze,taps,layout,gradients,ig]

Rows (the ratio's denominator is the floor: what the path cannot beat):
- analyze at the bundled net's 64 px, and at 224 px (random weights): / one bare eval forward; then
  the medians of its phases (the forward, and what follows it: the statistics' compiled pass and
  the heads);
- taps: the eval forward handing the probe's 14 points to a dict (how analyze reads them) / a
  bare forward; then the forward with capture()'s 14 forward hooks, registered and removed (how
  analyze read them before) / the forward with taps;
- layout: the eval forward of the net as gnet.load leaves it (channels_last on a CPU) / the same
  net with contiguous weights (not a floor: the choice of gnet.device.memory_format);
- layer_gradients (4 losses, weight and activation norms), batch of 8 at 64 px: / one plain
  forward + backward of the combined loss; then with its table built row by row (before issue 25)
  / from its template (now); with batch norm's running statistics copied and restored (before
  issue 25) / left untracked (now); with Gram-matrix weight norms for linear layers only / for
  convolutions too (now: inception5a/5b's); then a forward and three backward passes alone, every
  weight differentiated (one gradient per loss) / the plain forward + backward; then one vmapped
  backward over the three losses (is_grads_batched) / those three passes, with the largest
  difference between them;
- Integrated Gradients + NoiseTunnel (16 steps x 4 samples, 64 px): the app's former path (a
  fixed internal batch of 4, contiguous weights) / today's (the memory-budgeted batch, all
  steps at once when they fit, the net as loaded); then batching alone; with the
  largest differences between their maps.
Each row's timings are interleaved repeat by repeat, so a change in load hits both sides; the
median ratio is printed with its min and max, once per thread count (default: 1 and all cores,
which is what the app, the CLI and a script use), the counts also taking turns in every repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from unittest import mock

import numpy as np
import torch
from ratios import sync

import gnet
from gnet.data.samples import sample_images
from gnet.guard import seeded
from gnet.inspect.attributions import integrated_gradients
from gnet.inspect import gradients
from gnet.inspect.gradients import layer_gradients
from gnet.inspect.probe import capture, capture_points
from gnet.net.layers import HEADS, WEIGHT_LAYERS, submodules
from gnet.net.losses import head_losses


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


THREADS: list[int] = [1]  # set by --threads: every row is measured at each of these counts


def ratio(name: str, fast: Callable[[], object], floor: Callable[[], object], repeats: int, device) -> None:
    """One line per thread count: the median of fast / floor, the two timed in turn, every count in every repeat.

    The thread counts take turns within each repeat too, so a change in load hits every count
    alike; after each switch one untimed call of each side lets the thread pool settle.
    """
    for threads in THREADS:
        torch.set_num_threads(threads)
        for fn in (floor, fast, floor, fast):  # warm-up
            fn()
    a: dict[int, list[float]] = {n: [] for n in THREADS}
    b: dict[int, list[float]] = {n: [] for n in THREADS}
    for _ in range(repeats):
        for threads in THREADS:
            torch.set_num_threads(threads)
            if len(THREADS) > 1:
                floor(), fast()
            a[threads].append(_timed(fast, device))
            b[threads].append(_timed(floor, device))
    for threads in THREADS:
        r = [x / y for x, y in zip(a[threads], b[threads])]
        label = f"{name} [{threads} thread{'s' if threads > 1 else ''}]"
        fast_ms, floor_ms = statistics.median(a[threads]) * 1e3, statistics.median(b[threads]) * 1e3
        print(f"{label:<70} {fast_ms:9.2f} ms / {floor_ms:9.2f} ms = {statistics.median(r):5.2f}x  "
              f"(min {min(r):.2f}x, max {max(r):.2f}x)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", default=f"1,{torch.get_num_threads()}",
                   help="thread counts every row is measured at, comma-separated (default: 1 and all cores)")
    p.add_argument("--rows", default="analyze,taps,layout,gradients,ig", help="which rows to run, comma-separated")
    args = p.parse_args()
    rows = set(args.rows.split(","))
    THREADS[:] = sorted({int(n) for n in args.threads.split(",")})
    bundled = gnet.load("bundled", args.device)
    device = bundled.device
    print(f"{gnet.describe_device(device)}, torch {torch.__version__}, {args.repeats} interleaved repeats, "
          f"threads {THREADS}")

    for loaded, label in ((bundled, "bundled, 64 px"), (gnet.load("random", args.device), "random, 224 px")):
        if not rows & {"analyze", "taps", "layout"}:
            break
        x = loaded.preprocess(sample_images()[-1].path)

        def bare(net=loaded.net, x=x) -> None:
            with torch.inference_mode():
                net(x)

        if "analyze" in rows:
            _analyze(loaded, x, label, bare, device, args.repeats)
        if "taps" in rows:
            _taps(loaded, x, label, bare, device, args.repeats)
        if "layout" in rows:
            _layout(loaded, x, label, device, args.repeats)

    if "gradients" in rows:
        _gradients(device, args.repeats)
    if "ig" in rows:
        _integrated_gradients(bundled, device, args.repeats)


def _analyze(loaded, x: torch.Tensor, label: str, bare: Callable[[], None], device: torch.device, repeats: int) -> None:
    """The analyze row, then where its time went: analyze's own phases (its ``timing_ms``), medians per thread count."""
    phases: dict[int, list[dict[str, float]]] = {}

    def run() -> None:  # timed whole by ratio(): freeing the result included, as the floor frees its output
        start = time.perf_counter()
        analysis = gnet.analyze(loaded, x)
        returned = time.perf_counter()
        timing = analysis.timing_ms
        del analysis  # the captured activations: ~10 MB at 224 px
        freed = time.perf_counter()
        phases.setdefault(torch.get_num_threads(), []).append(
            {**timing, "result": (returned - start) * 1e3 - timing["total"], "free": (freed - returned) * 1e3})

    ratio(f"analyze / bare forward ({label})", run, bare, repeats, device)
    for threads in THREADS:
        med = {k: statistics.median(p[k] for p in phases[threads]) for k in phases[threads][0]}
        print(f"{'':4}[{threads} thread{'s' if threads > 1 else ''}] forward {med['forward']:.2f} ms; after it: "
              f"statistics {med['statistics']:.3f} ms, building the result {med['result']:.3f} ms, "
              f"freeing it {med['free']:.3f} ms; before it: lock and input {med['preprocess'] + med['wait']:.3f} ms",
              flush=True)


def _gradients(device: torch.device, repeats: int) -> None:
    net = gnet.googlenet(num_classes=10, batch_norm=True, branch5x5_kernel=5, seed=0).to(device).train()
    g = torch.Generator().manual_seed(0)
    xb = torch.randn(8, 3, 64, 64, generator=g).to(device)
    yb = torch.randint(0, 10, (8,), generator=g).to(device)

    def plain() -> None:
        head_losses(net(xb), yb)["total"].backward()
        net.zero_grad(set_to_none=True)

    ratio("layer_gradients / plain forward+backward (batch 8, 64 px)", lambda: layer_gradients(net, xb, yb), plain,
          repeats, device)

    def rows_built_one_by_one() -> None:  # how layer_gradients built its table before issue 25
        with mock.patch.object(gradients, "_tidy", gradients._tidy_rows):
            layer_gradients(net, xb, yb)

    ratio("layer_gradients: table built row by row / from its template", rows_built_one_by_one,
          lambda: layer_gradients(net, xb, yb), repeats, device)

    def running_stats_copied() -> None:  # how layer_gradients kept batch norm's statistics before issue 25
        with mock.patch.object(gradients, "_running_stats_kept", _buffers_copied):
            layer_gradients(net, xb, yb)

    ratio("layer_gradients: running statistics copied back / left untracked", running_stats_copied,
          lambda: layer_gradients(net, xb, yb), repeats, device)
    routed = gradients.patch_width

    def linear_grams_only() -> None:  # before issue 25 took convolutions the Gram route too
        with mock.patch.object(gradients, "patch_width",
                               lambda layer: routed(layer) if isinstance(layer, torch.nn.Linear) else None):
            layer_gradients(net, xb, yb)

    ratio("layer_gradients: Gram norms for linear layers only / convolutions too", linear_grams_only,
          lambda: layer_gradients(net, xb, yb), repeats, device)
    _backward_choices(net, xb, yb, plain, device, repeats)


@contextlib.contextmanager
def _buffers_copied(net: torch.nn.Module):
    """layer_gradients' former guard of the running statistics: every buffer copied, then copied back."""
    buffers = list(net.buffers())
    with torch.no_grad():
        saved = torch._foreach_mul(buffers, 1)
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_(buffers, saved)


def _backward_choices(net: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor, plain: Callable[[], None], device,
                      repeats: int) -> None:
    """layer_gradients' three backward passes (main, aux1, aux2) against one vmapped pass over the three losses.

    Both differentiate the same seeded forward (batch norm's batch statistics, dropout masks drawn
    alike), so their gradients are compared too. A third choice, the three passes at once in three
    Python threads, is left out of the timing: each new calling thread gets its own OpenMP team,
    whose spinning workers then slowed every later forward+backward in the process by ~1.8x.
    """
    points = submodules(net, (p.name for p in WEIGHT_LAYERS))
    found: dict[str, list] = {}

    def backward(batched: bool) -> Callable[[], None]:
        def run() -> None:
            with seeded(0, device), capture(net, points, detach=False) as outputs:
                losses = head_losses(net(xb), yb)
            tensors = [m.weight for m in points.values()] + [outputs[n] for n in points]
            if batched:
                stacked = torch.stack([losses[h] for h in HEADS])
                grads = torch.autograd.grad(stacked, tensors, grad_outputs=torch.eye(len(HEADS), device=device),
                                            is_grads_batched=True, allow_unused=True)
                found[batched] = [[None if g is None else g[i] for g in grads] for i in range(len(HEADS))]
            else:
                found[batched] = [torch.autograd.grad(losses[h], tensors, retain_graph=True, allow_unused=True)
                                  for h in HEADS]
        return run

    ratio("forward, three backward passes, all weights / plain forward+backward", backward(False), plain, repeats,
          device)
    ratio("vmapped backward (is_grads_batched) / three backward passes", backward(True), backward(False),
          max(5, repeats // 3), device)
    worst = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                for three, one in zip(found[False], found[True]) for a, b in zip(one, three)
                if a is not None and b is not None)
    print(f"{'':58} largest difference between their gradients, relative to each tensor's largest entry: {worst:.1e}")


def _taps(loaded, x: torch.Tensor, label: str, bare: Callable[[], None], device: torch.device, repeats: int) -> None:
    net, points = loaded.net, capture_points(loaded.net)

    def taps() -> None:
        with torch.inference_mode():
            net(x, taps={})

    def hooks() -> None:
        with torch.inference_mode(), capture(net, points):
            net(x)

    ratio(f"forward with taps / bare forward ({label})", taps, bare, repeats, device)
    ratio(f"forward with hooks / with taps ({label})", hooks, taps, repeats, device)


def _contiguous_copy(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` as it ran before gnet.load chose channels_last on a CPU: every weight in the standard layout."""
    return copy.deepcopy(net).to(memory_format=torch.contiguous_format)


def _layout(loaded, x: torch.Tensor, label: str, device: torch.device, repeats: int) -> None:
    contiguous = _contiguous_copy(loaded.net)

    def forward(net: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                net(x)
        return run

    ratio(f"eval forward: as loaded / contiguous weights ({label})", forward(loaded.net), forward(contiguous),
          repeats, device)


def _integrated_gradients(bundled, device: torch.device, repeats: int) -> None:
    """The former path (internal batch 4, contiguous weights) against today's (budgeted batch, the net as loaded).

    The second row separates batching from the layout: both sides on the net as loaded.
    """
    x = bundled.preprocess(sample_images()[-1].path)
    target = int(gnet.analyze(bundled, x).heads["main"].top[0].index)
    nets = {"former": _contiguous_copy(bundled.net), "now": bundled.net}
    maps = {}

    def ig(batch: int | None, net: str = "now") -> Callable[[], None]:
        def run() -> None:
            maps[batch, net] = integrated_gradients(nets[net], x, target, n_steps=16, nt_samples=4,
                                                    internal_batch_size=batch)
        return run

    n = max(5, repeats // 3)
    ratio("IG 16x4: former (batch 4, contiguous) / now (budgeted)", ig(4, "former"), ig(None), n, device)
    ratio("IG 16x4: internal batch 4 / budgeted, both as now", ig(4), ig(None), n, device)
    print(f"{'':58} largest difference between the maps, former and now: "
          f"{float(np.abs(maps[4, 'former'] - maps[None, 'now']).max()):.2e}; batch 4 and budgeted, both as now: "
          f"{float(np.abs(maps[4, 'now'] - maps[None, 'now']).max()):.2e}")


if __name__ == "__main__":
    main()
