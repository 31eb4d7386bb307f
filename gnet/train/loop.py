"""Train GoogLeNet with its auxiliary classifiers, resumably, on one process or several.

The loss follows the paper (Szegedy et al. 2014, arXiv:1409.4842, section 5): main loss
plus 0.3 x each auxiliary loss. Every random choice (shuffling, augmentation, dropout) is
a deterministic function of (seed, epoch, step or image), so ``--resume`` from a checkpoint
reaches exactly the parameters of an uninterrupted run. Every few steps one JSON line with
the losses and per-layer gradient norms goes to ``grad_log.jsonl``.

Data: Fashion-MNIST (grayscale, in memory) or a colour image folder streamed from disk
(:mod:`gnet.train.sets`). Several processes: start the same command with ``torchrun``
(:mod:`gnet.train.distributed`); ``batch_size`` is the global batch, split evenly over the
processes, so a run's trajectory settings and its checkpoints do not depend on how many
processes train it.

Run as ``python -m gnet train ...``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

import torch
from torch import nn
from tqdm import tqdm

from ..data.fashion_mnist import GrayImageDataset
from ..data.folders import StreamedFolder
from ..device import hardware, resolve_device, synchronize
from ..errors import CheckpointError, DatasetError, GNetError
from ..guard import exclusive
from ..net.layers import HEADS
from ..net.model import batch_statistics_defined
from ..storage import atomic_write
from ..weights.checkpoint import load_training_checkpoint
from . import gradlog
from .config import TRAJECTORY_FIELDS, TrainConfig
from .distributed import SINGLE, Dist, device_for, from_env, process_group
from .run import TrainRun
from .sets import Batch, ColourFolder, FashionMNIST, eval_batches, training_data

__all__ = ["check_resumable", "evaluate", "train"]

_EVAL_BATCH = 256
OnStep = Callable[[int, int], "bool | None"]  # (step, total_steps) -> False to stop
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
    synchronize(device)
    return time.monotonic()


def _train(
    cfg: TrainConfig, data: FashionMNIST | ColourFolder, d: Dist, device: torch.device, *, resume: Path | None,
    stop_at: int | None, progress: bool, on_step: OnStep | None,
) -> dict:
    data.check(d, progress)
    steps_per_epoch = data.n_train // cfg.batch_size  # drop the last partial batch: batch norm needs > 1 image
    card = {**data.card(cfg.input_size), "classes": list(data.classes), "num_classes": len(data.classes),
            "input_size": cfg.input_size, "heads_trained": {"main": True, "aux1": cfg.aux, "aux2": cfg.aux},
            "design": cfg.design()}
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
