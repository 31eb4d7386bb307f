"""Record the design lab's training comparison into assets/design_runs.json.

    python scripts/record_design_runs.py [--steps 300] [--batch-size 32] [--num-threads 2]

Four designs trained on Fashion-MNIST at 64 px for the same number of steps, one after the other,
each in a fresh process (so its peak resident memory is its own): the paper's, no 1x1 reductions,
the fc classifier and the VGG stem (gnet.net.design). Every ``--eval-every`` steps the run stops
with a checkpoint (gnet.train.loop's ``stop_at``), the checkpoint's three heads are scored on the
first ``--eval-images`` test images, and the run resumes; the training wall time excludes those
evaluations. Only the curves and the summary are kept, so the app draws instantly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gnet.net.design import PAPER, Design
from gnet.train.runs import DESIGN_RUNS_FILE, DESIGN_RUNS_VERSION

DESIGNS = (PAPER, Design(reductions=False), Design(classifier="fc"), Design(stem="vgg"))


def record(design: Design, args: argparse.Namespace, out_dir: str) -> dict:
    """Train one design in this (fresh) process; return its curve, result and peak memory."""
    import torch

    from gnet.device import hardware
    from gnet.train.config import TrainConfig
    from gnet.train.loop import evaluate, train
    from gnet.train.sets import FashionMNIST
    from gnet.weights.checkpoint import load_checkpoint

    torch.set_num_threads(args.num_threads)
    command = (f"python scripts/record_design_runs.py --steps {args.steps} --batch-size {args.batch_size} "
               f"--num-threads {args.num_threads}")
    cfg = TrainConfig(
        input_size=64, batch_size=args.batch_size, max_steps=args.steps, epochs=1, seed=0, grad_log_every=0,
        checkpoint_every=0, num_threads=args.num_threads, eval_limit=args.eval_images, out_dir=out_dir,
        device="cpu", command=f"{command}  # {design.name}", aux=design.aux, stem=design.stem,
        reductions=design.reductions, pool_proj=design.pool_proj, classifier=design.classifier,
    )
    eval_set = FashionMNIST(input_size=64, seed=0, eval_limit=args.eval_images).eval_set
    curve, resume, result = [], None, {}
    for stop in range(args.eval_every, args.steps + args.eval_every, args.eval_every):
        result = train(cfg, resume=resume, stop_at=min(stop, args.steps), progress=False)
        resume = Path(out_dir) / "last.pt"
        net, _ = load_checkpoint(resume)
        accuracy = evaluate(net, eval_set)
        curve.append({"step": result["steps"], "train_wall_s": result["wall_time_s"], "accuracy": accuracy})
        print(f"  {design.name}: step {result['steps']}, {result['wall_time_s']} s, main {accuracy['main']:.3f}",
              flush=True)
    last = curve[-1]
    return {
        "design": design.to_dict(), "name": design.name, "curve": curve, "steps": last["step"],
        "test_accuracy": last["accuracy"], "eval_images": args.eval_images,
        "time_per_step_s": last["train_wall_s"] / last["step"], "wall_time_s": last["train_wall_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": sum(p.numel() for p in net.parameters()), "hardware": hardware(), "command": cfg.command,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-images", type=int, default=2000)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=DESIGN_RUNS_FILE)
    args = p.parse_args()
    runs = []
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for i, design in enumerate(DESIGNS):
            print(f"run {design.name}", flush=True)
            # A fresh process per run: ru_maxrss is then that run's peak alone.
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                runs.append(pool.submit(record, design, args, str(Path(tmp) / str(i))).result())
    body = {"v": DESIGN_RUNS_VERSION, "input_size": 64, "batch_size": args.batch_size, "runs": runs}
    args.out.write_text(json.dumps(body, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
