"""Record the gradient lab's short training runs into assets/runs/ (logs + index.json).

    python scripts/record_gradient_runs.py [--steps 300] [--num-threads 1]

Six runs on Fashion-MNIST, one after the other: the paper's net (5x5 kernel) without
and with batch norm, each trained on the main loss only and on main + 0.3 (aux1 + aux2),
at torchvision's N(0, 0.01) init; plus the no-batch-norm pair at Xavier init. Only the
gradient logs and a small index are kept (no checkpoints), so the app draws instantly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from gnet.device import hardware
from gnet.train.config import TrainConfig
from gnet.train.loop import train
from gnet.train.runs import RUNS_VERSION
from gnet.weights.loader import ASSETS_DIR

RUNS = {  # name -> (batch_norm, aux, init)
    "nobn_noaux": (False, False, "trunc_normal"),
    "nobn_aux": (False, True, "trunc_normal"),
    "bn_noaux": (True, False, "trunc_normal"),
    "bn_aux": (True, True, "trunc_normal"),
    "nobn_noaux_xavier": (False, False, "xavier"),
    "nobn_aux_xavier": (False, True, "xavier"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ASSETS_DIR / "runs")
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)  # so hardware() reports the threads the runs used
    args.out.mkdir(parents=True, exist_ok=True)
    index = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (batch_norm, aux, init) in RUNS.items():
            cfg = TrainConfig(
                input_size=args.input_size, batch_size=args.batch_size, max_steps=args.steps, epochs=1,
                grad_log_every=args.log_every, branch5x5_kernel=5, init=init, seed=0, aux=aux,
                batch_norm=batch_norm, num_threads=args.num_threads, eval_limit=1000, checkpoint_every=0,
                out_dir=str(Path(tmp) / name), device="cpu",
                command=f"python scripts/record_gradient_runs.py --steps {args.steps}  # run {name}",
            )
            print(f"run {name}: batch_norm={batch_norm} aux={aux} init={init}", flush=True)
            result = train(cfg, progress=False)
            shutil.copy(Path(cfg.out_dir) / "grad_log.jsonl", args.out / f"{name}.jsonl")
            index.append(
                {
                    "name": name, "file": f"{name}.jsonl", "batch_norm": batch_norm, "aux": aux, "init": init,
                    "branch5x5_kernel": 5, "input_size": args.input_size, "batch_size": args.batch_size,
                    "steps": result["steps"], "grad_log_every": args.log_every, "lr": cfg.lr, "seed": cfg.seed,
                    "test_accuracy": result["accuracy"], "eval_split": result["eval_split"],
                    "wall_time_s": result["wall_time_s"], "hardware": hardware(), "command": cfg.command,
                }
            )
            print(f"  {result['accuracy']} in {result['wall_time_s']} s", flush=True)
    (args.out / "index.json").write_text(json.dumps({"v": RUNS_VERSION, "runs": index}, indent=1) + "\n")


if __name__ == "__main__":
    main()
