"""``gnet train``: train GoogLeNet with its auxiliary losses on Fashion-MNIST or a colour image folder, resumably.

Several processes: ``torchrun --nproc_per_node=N -m gnet train ...`` (any torchrun set-up, several
machines too), or ``gnet train --nproc-per-node N ...``, which starts the same launcher on this
machine and keeps a user error to one sentence and exit status 2 (torchrun adds a report of its own).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from . import options

NAME = "train"
HELP = "train GoogLeNet with its auxiliary losses (Fashion-MNIST or a colour image folder; torchrun for several GPUs)"
ORDER = 40


def configure(p: argparse.ArgumentParser) -> None:
    from ..net.model import INIT_SCHEMES
    from ..train.config import SCHEDULES, TrainConfig

    d = TrainConfig()
    p.add_argument("--data", default=d.data,
                   help="'fashion-mnist' or a colour image folder: root/<class>/<image>, or root/train/ + root/val/")
    p.add_argument("--input-size", type=int, default=d.input_size, help="square input side in pixels")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=None, help="stop the schedule after this many steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="the global batch, split over the processes")
    p.add_argument("--lr", type=float, default=d.lr, help="one-cycle peak, or the paper schedule's initial rate")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="one-cycle, or the paper's: the learning rate x0.96 every 8 epochs")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--no-nesterov", dest="nesterov", action="store_false", help="plain momentum, as in the paper")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--aux-weight", type=float, default=d.aux_weight, help="weight of each auxiliary loss")
    p.add_argument("--no-aux", dest="aux", action="store_false", help="train on the main loss only")
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", help="the paper's net (LRN)")
    p.add_argument("--branch5x5-kernel", type=int, choices=(3, 5), default=d.branch5x5_kernel)
    p.add_argument("--init", choices=INIT_SCHEMES, default=d.init)
    p.add_argument("--dropout", type=float, default=None, help="main head (default 0.2 with batch norm, else 0.4)")
    p.add_argument("--dropout-aux", type=float, default=d.dropout_aux, help="auxiliary heads")
    options.add_design(p)
    p.add_argument("--out-dir", default=None,
                   help=f"where last.pt, grad_log.jsonl, final.json go (default {d.out_dir}, or the --resume folder)")
    p.add_argument("--grad-log-every", type=int, default=d.grad_log_every, help="0 disables the gradient log")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    options.add_device(p)
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--workers", type=int, default=None, help="image-loading worker processes per training process")
    p.add_argument("--amp", action="store_true", help="CUDA: bfloat16 mixed precision (float16 + grad scaler without bf16)")
    p.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc_per_node", type=options.positive_int,
                   default=None, help="train with N processes on this machine (torch's launcher, as torchrun)")
    p.add_argument("--resume", type=Path, default=None, help="continue from this last.pt (uses its settings)")
    p.add_argument("--stop-at", type=int, default=None, help="stop after this global step (resume later)")
    p.add_argument("--export-bundled", type=Path, default=None, metavar="ASSETS_DIR",
                   help="after training, write the float16 weights and model card into this folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(parser=p)


def _command_line() -> str:
    return f"python -m gnet {shlex.join(sys.argv[1:])}".strip()


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This command line without ``--nproc-per-node``: what each launched process runs."""
    argv = [NAME]
    for action in args.parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in ("help", "nproc_per_node") or value == action.default:
            continue
        argv += [action.option_strings[0]] if action.nargs == 0 else [action.option_strings[0], str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    from ..errors import GNetError

    if args.nproc_per_node is not None:
        from ..train.distributed import from_env, launch

        if from_env().world > 1:
            raise GNetError("--nproc-per-node starts the processes itself: under torchrun, give it to torchrun only.")
        return launch(args.nproc_per_node, _worker_argv(args))
    try:
        return _train(args)
    except GNetError:
        from ..train.distributed import from_env

        if from_env().rank != 0:
            return 2  # every process meets the same error; rank 0 alone says it
        raise


def _train(args: argparse.Namespace) -> int:
    from ..device import hardware
    from ..net.layers import HEADS
    from ..train.config import TrainConfig
    from ..train.distributed import from_env
    from ..train.loop import TRAJECTORY_FIELDS, train
    from ..weights.checkpoint import load_training_checkpoint
    from ..weights.export import export_bundled, git_commit

    out_dir = args.out_dir or (args.resume.parent if args.resume is not None else TrainConfig.out_dir)
    runtime = {
        "out_dir": str(out_dir), "grad_log_every": args.grad_log_every,
        "checkpoint_every": args.checkpoint_every, "num_threads": args.num_threads, "eval_limit": args.eval_limit,
        "device": args.device, "workers": args.workers, "amp": args.amp,
    }
    if args.resume is not None:
        saved = load_training_checkpoint(args.resume)["train_config"]
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{**{k: v for k, v in saved.items() if k in fields}, **runtime})
    else:
        cfg = TrainConfig(**{n: getattr(args, n) for n in TRAJECTORY_FIELDS}, **runtime, command=_command_line())
    result = train(cfg, resume=args.resume, stop_at=args.stop_at, progress=args.progress)
    if from_env().rank != 0:
        return 0
    for reason in result["skipped_images"]:
        print(f"skipped: {reason}")
    if result["accuracy"] is None:
        steps = f"{result['steps']}/{result['total_steps']}"
        print(f"stopped at step {steps}; continue with --resume {result['checkpoint']}")
        return 0
    accs = ", ".join(f"{h} {result['accuracy'][h]:.2%}" for h in HEADS)
    print(f"top-1 on {result['eval_split']}: {accs}")
    if args.export_bundled is not None:
        paths = export_bundled(
            result["checkpoint"], args.export_bundled,
            accuracy={**result["accuracy"], "split": result["eval_split"]}, command=cfg.command,
            wall_time_s=result["wall_time_s"], hardware=hardware(), commit=git_commit(),
        )
        print("exported " + ", ".join(map(str, paths)))
    return 0
