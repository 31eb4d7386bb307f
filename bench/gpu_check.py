"""GPU check: the probe on CUDA and on CPU gives the same heads; prints both timings.

    python bench/gpu_check.py [--weights bundled]

Exits 1 if the heads disagree (max abs logit difference >= 1e-3), 0 otherwise;
prints a notice and exits 0 when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import gnet
from gnet.data.samples import sample_images


def _timed(loaded: gnet.LoadedModel, x: torch.Tensor, repeats: int) -> tuple[gnet.Analysis, float]:
    gnet.analyze(loaded, x)  # warm-up (cuDNN autotune, allocator)
    t = time.perf_counter()
    for _ in range(repeats):
        a = gnet.analyze(loaded, x)
    return a, (time.perf_counter() - t) / repeats * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check")
        return 0
    cpu = gnet.load(args.weights, "cpu")
    cuda = gnet.load(args.weights, "cuda")
    worst = 0.0
    for sample in sample_images():
        x = cpu.preprocess(sample.path)
        a_cpu, ms_cpu = _timed(cpu, x, args.repeats)
        a_gpu, ms_gpu = _timed(cuda, x, args.repeats)
        diff = max(float((a_cpu.heads[h].logits - a_gpu.heads[h].logits).abs().max()) for h in a_cpu.heads)
        worst = max(worst, diff)
        print(f"{sample.name:<28} cpu {ms_cpu:7.1f} ms  {a_gpu.device} {ms_gpu:7.1f} ms  max|dlogit| {diff:.2e}")
    print(f"worst max abs logit difference: {worst:.2e} (bar: < 1e-3)")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
