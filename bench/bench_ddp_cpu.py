"""Training images/s with 1 and 2 processes on the CPU (gloo), as a ratio measured in one run.

    python bench/bench_ddp_cpu.py [--repeats 3] [--steps 12] [--threads 1]

Both run ``gnet train --nproc-per-node N`` on the same generated folder of colour images with the
same global batch, each process with ``--threads`` torch threads and one loading worker; runs are
interleaved (1, 2, 1, 2, ...). Images/s is what the trainer reports: global images per second
after its first (warm-up) step, so process start-up and the image check are not counted. On a
machine whose cores are shared, 2 processes can only help as far as free cores allow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from generated import make_folder, spread

ROOT = Path(__file__).resolve().parent.parent


def run(folder: Path, out: Path, nproc: int, steps: int, threads: int) -> float:
    command = [
        sys.executable, "-m", "gnet", "train", "--data", str(folder), "--input-size", "64", "--batch-size", "32",
        "--epochs", "1", "--max-steps", str(steps), "--workers", "1", "--num-threads", str(threads),
        "--checkpoint-every", "0", "--grad-log-every", "0", "--eval-limit", "64", "--no-progress",
        "--out-dir", str(out), "--nproc-per-node", str(nproc),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{nproc} process(es) failed:\n{done.stderr[-2000:]}")
    return json.loads((out / "final.json").read_text())["train_images_per_s"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = p.parse_args()
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="gnet-bench-") as tmp:
        folder = make_folder(Path(tmp) / "images", 800)
        for r in range(args.repeats):
            for nproc in (1, 2):
                rates[nproc].append(run(folder, Path(tmp) / f"run{nproc}_{r}", nproc, args.steps, args.threads))
                print(f"repeat {r + 1}: {nproc} process(es): {rates[nproc][-1]:.1f} images/s", flush=True)
    ratios = [b / a for a, b in zip(rates[1], rates[2])]
    print(f"{os.cpu_count()} CPU cores, {args.threads} thread(s) per process, global batch 32 at 64 px, "
          f"{args.steps} steps per run")
    for nproc, values in rates.items():
        print(f"{nproc} process(es): images/s {spread(values)}")
    print(f"ratio 2 processes / 1: {spread(ratios, digits=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
