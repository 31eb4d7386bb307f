"""GPU training throughput with and without ``--amp``, and the GPU's name; prints everything to stdout.

    python bench/bench_amp_gpu.py [--batch 128] [--steps 30] [--repeats 2] [--workers 8]

Two measurements, each float32 vs --amp (bfloat16, or float16 with a gradient scaler where the
GPU has no bfloat16), interleaved:

- step: the trainer's own optimizer step (gnet.train.run.TrainRun, channels_last) on one batch
  already on the GPU, so only the GPU's work is timed;
- end to end: ``gnet.train.loop`` on a generated folder of 160x120 JPEGs, with DataLoader workers
  decoding and augmenting (RandomResizedCrop + flip) every image, so the loader can be the limit.

Meant to finish in under 2 minutes on one H100/H200. Without CUDA it says so and exits 0
(``--device cpu`` runs the float32 half on tiny settings, to check the script itself).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from generated import make_folder, spread
from ratios import sync

from gnet.device import describe_device
from gnet.train.config import TrainConfig
from gnet.train.distributed import SINGLE
from gnet.train.loop import train
from gnet.train.run import TrainRun


def step_rate(device: torch.device, amp: bool, batch: int, size: int, steps: int) -> float:
    """Images/s of TrainRun.train_step on one resident batch (after 5 warm-up steps)."""
    cfg = TrainConfig(input_size=size, batch_size=batch, epochs=1, max_steps=steps + 5, amp=amp, grad_log_every=0,
                      device=str(device))
    run = TrainRun(cfg, [f"c{i}" for i in range(1000)], steps + 5, batch * (steps + 5), device, SINGLE, {})
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    run.net.train()
    for _ in range(5):
        run.train_step(x, y, None)
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        run.train_step(x, y, None)
    sync(device)
    return steps * batch / (time.perf_counter() - started)


def folder_rate(folder: Path, out: Path, device: torch.device, amp: bool, batch: int, size: int, steps: int,
                workers: int) -> float:
    cfg = TrainConfig(data=str(folder), out_dir=str(out), input_size=size, batch_size=batch, epochs=1,
                      max_steps=steps, amp=amp, workers=workers, checkpoint_every=0, grad_log_every=0,
                      eval_limit=batch, device=str(device))
    return train(cfg, progress=False)["train_images_per_s"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure")
        return 0
    modes = (False, True) if device.type == "cuda" else (False,)
    started = time.perf_counter()
    print(f"device: {describe_device(device)}; torch {torch.__version__}; batch {args.batch} at {args.size} px, "
          f"{args.steps} timed steps, {args.repeats} repeats interleaved")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        print(f"--amp means: {'bfloat16' if bf16 else 'float16 with a gradient scaler'}; channels_last in both")
    step: dict[bool, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for amp in modes:
            step[amp].append(step_rate(device, amp, args.batch, args.size, args.steps))
    folder_images = max(4 * args.batch, 512)
    end_to_end: dict[bool, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="gnet-bench-") as tmp:
        folder = make_folder(Path(tmp) / "images", folder_images, classes=8)
        for r in range(args.repeats):
            for amp in modes:
                end_to_end[amp].append(folder_rate(folder, Path(tmp) / f"run{r}{amp}", device, amp, args.batch,
                                                   args.size, args.steps, args.workers))
    for title, rates in (("step (batch on the GPU)", step), (f"end to end ({args.workers} loader workers)", end_to_end)):
        for amp, values in rates.items():
            print(f"{title}: {'--amp  ' if amp else 'float32'} images/s {spread(values)}")
        if len(rates) == 2:
            print(f"{title}: ratio amp / float32 {spread([a / f for f, a in zip(rates[False], rates[True])], digits=2)}")
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
