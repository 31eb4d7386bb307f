"""Peak RSS of the main process training one epoch from a generated folder of 200 vs 2,000 RGB images.

    python bench/bench_folder_memory.py [--repeats 2] [--workers 2] [--keep DIR]

Each run is a fresh ``python -m gnet train`` process (so peaks do not carry over) that trains one
full epoch on the folder and evaluates on it, with DataLoader workers decoding the images; the
peak RSS is the main process's own (``getrusage(RUSAGE_SELF)``), workers not included. Runs are
interleaved (200, 2000, 200, 2000, ...). The issue's bar: the 2,000-image peak within 300 MB of the
200-image peak, since nothing holds the images.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from generated import make_folder, spread

SIZES = (200, 2000)
BAR_MB = 300
ROOT = Path(__file__).resolve().parent.parent


_CHILD = """
import json, resource, sys
from gnet.train.loop import TrainConfig, train
cfg = TrainConfig(data=sys.argv[1], out_dir=sys.argv[2], input_size=64, epochs=1, batch_size=32, num_threads=1,
                  workers=int(sys.argv[3]), checkpoint_every=0, grad_log_every=0)
result = train(cfg, progress=False)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
print(json.dumps({"peak_rss_mb": peak_kb / 1024, "steps": result["steps"], "images_per_s": result["train_images_per_s"]}))
"""


def run_one(folder: Path, out: Path, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(out), str(workers)], env=env, capture_output=True, text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"training on {folder} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", type=Path, default=None, help="generate the folders here and keep them")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="gnet-bench-") as tmp:
        base = args.keep or Path(tmp)
        folders = {n: make_folder(base / f"images{n}", n) for n in SIZES}
        peaks: dict[int, list[float]] = {n: [] for n in SIZES}
        for r in range(args.repeats):
            for n in SIZES:
                got = run_one(folders[n], base / f"run{n}_{r}", args.workers)
                peaks[n].append(got["peak_rss_mb"])
                print(f"repeat {r + 1}: {n:>5} images, {got['steps']} steps: peak RSS {got['peak_rss_mb']:.0f} MB", flush=True)
    small, large = (statistics.median(peaks[n]) for n in SIZES)
    print(f"workers per run: {args.workers}; input 64 px, batch 32, one epoch + evaluation on the folder")
    for n in SIZES:
        print(f"{n:>5} images: peak RSS {spread(peaks[n], ' MB', 0)}")
    print(f"difference 2,000 - 200: {large - small:+.0f} MB (bar: within {BAR_MB} MB): "
          f"{'met' if large - small <= BAR_MB else 'MISSED'}")
    return 0 if large - small <= BAR_MB else 1


if __name__ == "__main__":
    sys.exit(main())
