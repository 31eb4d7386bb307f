"""Train GoogLeNet with its auxiliary classifiers, resumably, on one process or several.

The loss follows the paper (Szegedy et al. 2014, arXiv:1409.4842, section 5): main loss
plus 0.3 x each auxiliary loss. Every random choice (shuffling, augmentation, dropout) is
a deterministic function of (seed, epoch, step or image), so ``--resume`` from a checkpoint
reaches exactly the parameters of an uninterrupted run. Every few steps one JSON line with
the losses and per-layer gradient norms goes to ``grad_log.jsonl``.

Data: Fashion-MNIST (grayscale, in memory) or a colour image folder streamed from disk
(:mod:`gnet.trainsets`). Several processes: start the same command with ``torchrun``
(:mod:`gnet.distributed`); ``batch_size`` is the global batch, split evenly over the
processes, so a run's trajectory settings and its checkpoints do not depend on how many
processes train it.

Run as ``python -m gnet train ...``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
from torch import nn
from tqdm import tqdm

from gnet import gradlog
from gnet.checkpoint import load_training_checkpoint
from gnet.data import GrayImageDataset
from gnet.device import hardware, resolve_device
from gnet.distributed import SINGLE, Dist, device_for, from_env, process_group
from gnet.errors import CheckpointError, DatasetError, GNetError
from gnet.folders import StreamedFolder
from gnet.guard import exclusive
from gnet.layers import HEADS
from gnet.losses import AUX_WEIGHT
from gnet.storage import atomic_write
from gnet.model import INIT_SCHEMES, SINGLE_IMAGE_MIN_SIZE, batch_statistics_defined, check_input_size
from gnet.trainrun import TrainRun
from gnet.trainsets import Batch, ColourFolder, FashionMNIST, eval_batches, training_data

__all__ = ["SCHEDULES", "TRAJECTORY_FIELDS", "TrainConfig", "check_resumable", "evaluate", "train"]

_EVAL_BATCH = 256
OnStep = Callable[[int, int], "bool | None"]  # (step, total_steps) -> False to stop
SCHEDULES = ("one-cycle", "paper")
# Fields that shape the optimisation trajectory: a resumed run must agree on all of them.
TRAJECTORY_FIELDS = (
    "data", "input_size", "epochs", "max_steps", "batch_size", "lr", "momentum", "weight_decay",
    "seed", "aux_weight", "aux", "batch_norm", "branch5x5_kernel", "init",
    "schedule", "nesterov", "dropout", "dropout_aux",
)


@dataclass
class TrainConfig:
    """One training run; every field is recorded in the checkpoint and the model card."""

    data: str = "fashion-mnist"  # "fashion-mnist" or a colour image folder (root/<class>/<image>, or train/ + val/)
    input_size: int = 64  # 28x28 garments upsampled; 64 keeps 2x2 maps at inception5b and CPU training cheap
    epochs: int = 5  # full passes over the training set; the one-cycle schedule spans all of them
    max_steps: int | None = None  # cap on optimizer steps (the schedule shrinks to it), for tests and short runs
    batch_size: int = 64  # the global batch, split over the processes; small enough for a 2-core CPU
    lr: float = 0.05  # one-cycle peak (or the paper schedule's start); SGD with batch norm tolerates it
    momentum: float = 0.9  # the paper's 0.9
    weight_decay: float = 5e-4  # usual for GoogLeNet-sized nets on small data sets
    seed: int = 0  # initialisation, shuffling, augmentation and dropout all derive from it
    aux_weight: float = AUX_WEIGHT  # the paper's weight of each auxiliary loss
    aux: bool = True  # False: loss = main head only (aux heads still evaluated, for comparison)
    batch_norm: bool = True  # torchvision's layout; False gives the paper's net (LRN, no batch norm)
    branch5x5_kernel: int = 3  # torchvision's 3 (pytorch/vision#906) or the paper's 5
    init: str = "trunc_normal"  # weight initialisation scheme, see gnet.model.INIT_SCHEMES
    schedule: str = "one-cycle"  # "one-cycle" (the bundled model's) or "paper" (x0.96 every 8 epochs)
    nesterov: bool = True  # Nesterov momentum, standard for SGD on convnets; the paper used plain momentum
    dropout: float | None = None  # main head; None: 0.2 with batch norm (torchvision), 0.4 without (the paper)
    dropout_aux: float = 0.7  # the auxiliary heads' dropout, the paper's 70%
    out_dir: str = "runs/train"  # last.pt, grad_log.jsonl and final.json go here
    grad_log_every: int = 50  # steps between gradient-log lines; 0 disables the log
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints (plus every epoch end)
    num_threads: int | None = None  # torch intra-op threads; None keeps torch's default
    device: str | None = None  # None/"auto": CUDA, then MPS, then CPU (see gnet.device)
    eval_limit: int | None = None  # evaluate on only the first N test images, for tests
    workers: int | None = None  # DataLoader worker processes per training process (folders); None: by CPU count
    amp: bool = False  # CUDA only: bfloat16 (float16 + gradient scaler where bf16 is missing) forward
    command: str = ""  # how the run was launched, recorded in the model card

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`GNetError` (:class:`DatasetError` for ``data``) for the first setting a run cannot use.

        Called on construction and again by :func:`train`, since fields may be reassigned.
        """
        if self.data != "fashion-mnist" and not Path(self.data).is_dir():
            raise DatasetError(
                f"image folder {self.data!r} does not exist; give 'fashion-mnist' or a folder with one subfolder "
                "per class."
            )
        check_input_size(self.input_size)
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}."),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps must be at least 1, got {self.max_steps}."),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}."),
            (not self.batch_norm or batch_statistics_defined(self.batch_size, self.input_size),
             "Batch norm needs more than one value per channel: use --batch-size 2 or more, "
             f"--input-size {SINGLE_IMAGE_MIN_SIZE} or more, or --no-batch-norm."),
            (math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}."),
            (0 < self.momentum < 1, f"--momentum must lie strictly between 0 and 1, got {self.momentum}."),
            (0 <= self.weight_decay < math.inf, f"--weight-decay must be 0 or more, got {self.weight_decay}."),
            (0 <= self.aux_weight < math.inf, f"--aux-weight must be 0 or more, got {self.aux_weight}."),
            (self.branch5x5_kernel in (3, 5), f"--branch5x5-kernel must be 3 or 5, got {self.branch5x5_kernel}."),
            (self.init in INIT_SCHEMES, f"--init must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}."),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}."),
            (self.dropout is None or 0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}."),
            (0 <= self.dropout_aux < 1, f"--dropout-aux must lie in [0, 1), got {self.dropout_aux}."),
            (self.grad_log_every >= 0, f"--grad-log-every must be 0 (off) or more, got {self.grad_log_every}."),
            (self.checkpoint_every >= 0,
             f"--checkpoint-every must be 0 (epoch ends only) or more, got {self.checkpoint_every}."),
            (self.num_threads is None or self.num_threads >= 1,
             f"--num-threads must be at least 1, got {self.num_threads}."),
            (self.eval_limit is None or self.eval_limit >= 1,
             f"--eval-limit must be at least 1, got {self.eval_limit}."),
            (self.workers is None or self.workers >= 0, f"--workers must be 0 (load in the main process) or more, "
             f"got {self.workers}."),
        ]
        for ok, message in checks:
            if not ok:
                raise GNetError(message)


def check_resumable(ckpt: dict, cfg: TrainConfig, path: Path) -> None:
    """Raise CheckpointError when ``cfg`` differs from the checkpoint's run in a trajectory field.

    A field the checkpoint predates counts as its default.
    """
    saved = ckpt["train_config"]
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    differing = [f for f in TRAJECTORY_FIELDS if saved.get(f, defaults[f]) != getattr(cfg, f)]
    if differing:
        raise CheckpointError(
            f"{path} was trained with different {', '.join(differing)}; resume with the checkpoint's settings."
        )


# ---------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate(
    net: nn.Module, dataset: GrayImageDataset | StreamedFolder, *, batch_size: int = _EVAL_BATCH, d: Dist = SINGLE,
    workers: int = 0,
) -> dict[str, float]:
    """Top-1 accuracy of each head on ``dataset``, in eval mode (the caller's mode is restored).

    With several processes each evaluates its share and the counts are summed. An image that
    could not be decoded is left out of the count.
    """
    return _accuracy(net, eval_batches(dataset, d, batch_size, workers), d)


def _accuracy(net: nn.Module, batches: Iterable[Batch], d: Dist) -> dict[str, float]:
    device = next(net.parameters()).device
    counts = torch.zeros(len(HEADS) + 1, dtype=torch.float64)  # correct per head, then images counted
    with exclusive(net, training=False), torch.inference_mode():
        for x, y, skipped in batches:
            counted = torch.tensor([not s for s in skipped])
            for i, logits in enumerate(net(x.to(device, memory_format=torch.channels_last))):
                counts[i] += int(((logits.argmax(1).cpu() == y) & counted).sum())
            counts[-1] += int(counted.sum())
    counts = d.sum_(counts)
    return {head: float(counts[i] / counts[-1]) for i, head in enumerate(HEADS)}


# ---------------------------------------------------------------------------------------------
# Training


def train(
    cfg: TrainConfig,
    *,
    resume: Path | str | None = None,
    stop_at: int | None = None,
    progress: bool = True,
    on_step: OnStep | None = None,
) -> dict:
    """Train (or continue training) and return {"accuracy", "eval_split", "steps", "wall_time_s", ...}.

    ``stop_at`` ends the run after that global step with a checkpoint but without the final
    evaluation, as an interruption would; ``resume`` continues from such a checkpoint, also
    with another number of processes. ``on_step(step, total_steps)`` is called after every
    optimizer step (the gradient log is flushed by then); returning False stops the run the
    same way as ``stop_at``. Under torchrun every process calls this; only rank 0 writes files.
    """
    cfg.validate()
    d = from_env()
    device = device_for(d, resolve_device(cfg.device))
    if cfg.amp and device.type != "cuda":
        raise GNetError(f"--amp (mixed precision) needs a CUDA GPU and this run is on the {device.type}: drop --amp.")
    previous_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        data = training_data(
            cfg.data, input_size=cfg.input_size, seed=cfg.seed, eval_limit=cfg.eval_limit, workers=_workers(cfg, d)
        )
        _check_world(cfg, data.n_train, d)  # before the processes wait on each other
        with process_group(d, device):
            return _train(
                cfg, data, d, device, resume=Path(resume) if resume else None, stop_at=stop_at, progress=progress,
                on_step=on_step,
            )
    finally:
        torch.set_num_threads(previous_threads)


def _workers(cfg: TrainConfig, d: Dist) -> int:
    """DataLoader workers per process: as asked, else the CPU cores left per process, at most 8."""
    if cfg.workers is not None:
        return cfg.workers
    return min(8, max(1, (os.cpu_count() or 1) // d.world - 1))


def _check_world(cfg: TrainConfig, n_train: int, d: Dist) -> None:
    """Refuse a number of processes the data or the batch cannot be split over."""
    if d.world > n_train:
        raise DatasetError(
            f"{cfg.data} has {n_train} training images, fewer than the {d.world} processes: "
            f"use --nproc_per_node {n_train} or fewer."
        )
    if cfg.batch_size % d.world:
        raise GNetError(
            f"--batch-size {cfg.batch_size} (the global batch) does not split evenly over {d.world} processes: "
            f"use a multiple of {d.world}."
        )
    if cfg.batch_norm and not batch_statistics_defined(cfg.batch_size // d.world, cfg.input_size):
        raise GNetError(
            f"Batch norm needs more than one image per process at --input-size {cfg.input_size}: "
            f"use --batch-size {2 * d.world} or more, or fewer processes."
        )
    if n_train < cfg.batch_size:
        raise DatasetError(f"{cfg.data} has {n_train} training images, fewer than a batch of {cfg.batch_size}.")


def _run_epoch(
    run: TrainRun, data: FashionMNIST | ColourFolder, end: int, bar: tqdm, grad_log: TextIO | None,
    on_step: OnStep | None,
) -> bool:
    """Continue the current epoch from ``run.step`` until its end or global step ``end``; True if told to stop."""
    cfg, out_dir, d = run.cfg, Path(run.cfg.out_dir), run.d
    epoch, offset = divmod(run.step, run.steps_per_epoch)
    correct, seen = dict.fromkeys(HEADS, 0), 0
    batches = data.batches(epoch, offset, run.steps_per_epoch, cfg.batch_size, d)
    for x, y, skipped in itertools.islice(batches, min(run.steps_per_epoch - offset, end - run.step)):
        for reason in filter(None, skipped):
            run.skipped.append(reason)
            if d.is_main:
                bar.write(f"skipped (replaced by the next image): {reason}")
        x = x.to(run.device, non_blocking=True, memory_format=torch.channels_last)
        y = y.to(run.device, non_blocking=True)
        out, losses = run.train_step(x, y, grad_log)
        if run.first_step_done is None:
            run.first_step_done = _synced_time(run.device)
        seen += len(y)
        for head, logits in zip(HEADS, out):
            correct[head] += int((logits.argmax(1) == y).sum())
        bar.update()
        bar.set_postfix(
            epoch=epoch + 1, loss=f"{losses['total'].item():.3f}",
            **{head: f"{correct[head] / seen:.3f}" for head in HEADS}, refresh=False,
        )
        if run.step % run.steps_per_epoch == 0 or (cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0):
            run.save(out_dir / "last.pt")
        if on_step is not None and on_step(run.step, run.total_steps) is False:
            return True
    if not bar.disable and seen:
        accs = ", ".join(f"{h} {correct[h] / seen:.4f}" for h in HEADS)
        bar.write(f"epoch {epoch + 1} up to step {run.step}/{run.total_steps}: running train accuracy {accs}")
    return False


def _synced_time(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.monotonic()


def _train(
    cfg: TrainConfig, data: FashionMNIST | ColourFolder, d: Dist, device: torch.device, *, resume: Path | None,
    stop_at: int | None, progress: bool, on_step: OnStep | None,
) -> dict:
    data.check(d, progress)
    steps_per_epoch = data.n_train // cfg.batch_size  # drop the last partial batch: batch norm needs > 1 image
    card = {**data.card(cfg.input_size), "classes": list(data.classes), "num_classes": len(data.classes),
            "input_size": cfg.input_size, "heads_trained": {"main": True, "aux1": cfg.aux, "aux2": cfg.aux}}
    run = TrainRun(cfg, data.classes, steps_per_epoch, data.n_train, device, d, card)
    if resume is not None:
        ckpt = load_training_checkpoint(resume)
        check_resumable(ckpt, cfg, resume)
        run.restore(ckpt, resume)
    out_dir = Path(cfg.out_dir)
    if d.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        gradlog.trim(out_dir / "grad_log.jsonl", run.step)
    end = run.total_steps if stop_at is None else min(stop_at, run.total_steps)
    run.net.train()
    bar = tqdm(
        total=run.total_steps, initial=run.step, disable=not (progress and d.is_main), unit="step",
        dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 60.0,
    )
    steps_before = run.step
    with bar, (open(out_dir / "grad_log.jsonl", "a") if d.is_main else nullcontext()) as grad_log:
        stopped = False
        while run.step < end and not stopped:
            stopped = _run_epoch(run, data, end, bar, grad_log, on_step)
    if run.step % steps_per_epoch != 0 and not (cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0):
        run.save(out_dir / "last.pt")  # stopped mid-epoch between checkpoints

    skipped = d.gather(run.skipped)
    timed = run.step - steps_before - 1  # the first step (warm-up) is not timed
    result = {
        "steps": run.step, "total_steps": run.total_steps, "wall_time_s": round(run.wall_time(), 1),
        "checkpoint": str(out_dir / "last.pt"), "accuracy": None, "eval_split": data.eval_split,
        "processes": d.world, "skipped_images": skipped,
        "train_images_per_s": (
            round(timed * cfg.batch_size / (_synced_time(device) - run.first_step_done), 1) if timed > 0 else None
        ),
    }
    if run.step < run.total_steps:
        return result
    d.broadcast_buffers(run.net)  # every process evaluates the net its checkpoint holds
    result["accuracy"] = _accuracy(run.net, data.eval_batches(d, _EVAL_BATCH, _workers(cfg, d)), d)
    result["wall_time_s"] = round(run.wall_time(), 1)
    if d.is_main:
        final = {**result, "hardware": hardware(), "train_config": dataclasses.asdict(cfg)}
        atomic_write(out_dir / "final.json", (json.dumps(final, indent=2) + "\n").encode())
    return result
