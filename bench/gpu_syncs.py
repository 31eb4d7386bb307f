"""How often one ``gnet.analyze`` waits for the GPU: host synchronisations and device-to-host copies per call.

    python bench/gpu_syncs.py [--weights bundled] [--calls 5]

Counts, with torch.profiler, the CUDA runtime calls that block the host (cudaStreamSynchronize,
cudaDeviceSynchronize, cudaMemcpy*) and the scalar reads (aten::item / _local_scalar_dense)
during ``--calls`` analyses, and prints them per call. The probe copies everything it keeps to
the CPU at once, so this should not grow with the number of branches (36).
"""

from __future__ import annotations

import argparse
import collections
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import gnet
from gnet.data.samples import sample_images

WATCHED = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy", "aten::item", "aten::_local_scalar_dense")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--calls", type=int, default=5)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to count")
        return 0
    loaded = gnet.load(args.weights, "cuda")
    x = loaded.preprocess(sample_images()[0].path)
    gnet.analyze(loaded, x)  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.calls):
            gnet.analyze(loaded, x)
    counts: collections.Counter[str] = collections.Counter()
    for event in prof.events():
        for name in WATCHED:
            if event.name.startswith(name):
                counts[event.name] += 1
    print(f"{loaded.device_name}, weights {args.weights}, {args.calls} analyses")
    for name, n in sorted(counts.items()):
        print(f"  {name:<32} {n / args.calls:6.1f} per analyze")
    return 0


if __name__ == "__main__":
    sys.exit(main())
