"""Train GoogLeNet with its auxiliary classifiers, resumably, and export the bundled model.

The loss follows the paper (Szegedy et al. 2014, arXiv:1409.4842, section 5): main loss
plus 0.3 x each auxiliary loss. Every random choice (shuffling, augmentation, dropout) is
a deterministic function of (seed, epoch, step), so ``--resume`` from a checkpoint reaches
exactly the parameters of an uninterrupted run. Every few steps one JSON line with the
losses and per-layer gradient norms goes to ``grad_log.jsonl``.

Run as ``python -m gnet train ...`` (or ``python -m gnet.train ...``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
from torch import Tensor
from tqdm import tqdm

from gnet import gradlog
from gnet.checkpoint import load_training_checkpoint, save_training_checkpoint
from gnet.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    GrayImageDataset,
    load_fashion_mnist,
    load_image_folder,
)
from gnet.device import hardware, resolve_device
from gnet.errors import CheckpointError, DatasetError, GNetError
from gnet.gradients import tensor_norms
from gnet.guard import exclusive, seeded
from gnet.layers import HEADS, WEIGHT_LAYERS, submodule
from gnet.losses import AUX_WEIGHT, head_losses
from gnet.model import (
    INIT_SCHEMES,
    SINGLE_IMAGE_MIN_SIZE,
    GoogLeNet,
    HeadLogits,
    batch_statistics_defined,
    check_input_size,
    googlenet,
)

__all__ = ["TRAJECTORY_FIELDS", "TrainConfig", "evaluate", "train"]

_EVAL_BATCH = 256
OnStep = Callable[[int, int], "bool | None"]  # (step, total_steps) -> False to stop
# Fields that shape the optimisation trajectory: a resumed run must agree on all of them.
TRAJECTORY_FIELDS = (
    "data", "input_size", "epochs", "max_steps", "batch_size", "lr", "momentum", "weight_decay",
    "seed", "aux_weight", "aux", "batch_norm", "branch5x5_kernel", "init",
)


@dataclass
class TrainConfig:
    """One training run; every field is recorded in the checkpoint and the model card."""

    data: str = "fashion-mnist"  # "fashion-mnist" or an ImageFolder path (root/<class>/<image>)
    input_size: int = 64  # 28x28 garments upsampled; 64 keeps 2x2 maps at inception5b and CPU training cheap
    epochs: int = 5  # full passes over the training set; the one-cycle schedule spans all of them
    max_steps: int | None = None  # cap on optimizer steps (the schedule shrinks to it), for tests and short runs
    batch_size: int = 64  # small enough for a 2-core CPU, large enough for stable batch norm
    lr: float = 0.05  # one-cycle peak; SGD with batch norm tolerates it
    momentum: float = 0.9  # Nesterov momentum, as is standard for SGD on convnets
    weight_decay: float = 5e-4  # usual for GoogLeNet-sized nets on small data sets
    seed: int = 0  # initialisation, shuffling, augmentation and dropout all derive from it
    aux_weight: float = AUX_WEIGHT  # the paper's weight of each auxiliary loss
    aux: bool = True  # False: loss = main head only (aux heads still evaluated, for comparison)
    batch_norm: bool = True  # torchvision's layout; False gives the paper's net (LRN, no batch norm)
    branch5x5_kernel: int = 3  # torchvision's 3 (pytorch/vision#906) or the paper's 5
    init: str = "trunc_normal"  # weight initialisation scheme, see gnet.model.INIT_SCHEMES
    out_dir: str = "runs/train"  # last.pt, grad_log.jsonl and final.json go here
    grad_log_every: int = 50  # steps between gradient-log lines; 0 disables the log
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints (plus every epoch end)
    num_threads: int | None = None  # torch intra-op threads; None keeps torch's default
    device: str | None = None  # None/"auto": CUDA, then MPS, then CPU (see gnet.device)
    eval_limit: int | None = None  # evaluate on only the first N test images, for tests
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
            (0 < self.momentum < 1, f"--momentum must lie strictly between 0 and 1 (Nesterov), got {self.momentum}."),
            (0 <= self.weight_decay < math.inf, f"--weight-decay must be 0 or more, got {self.weight_decay}."),
            (0 <= self.aux_weight < math.inf, f"--aux-weight must be 0 or more, got {self.aux_weight}."),
            (self.branch5x5_kernel in (3, 5), f"--branch5x5-kernel must be 3 or 5, got {self.branch5x5_kernel}."),
            (self.init in INIT_SCHEMES, f"--init must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}."),
            (self.grad_log_every >= 0, f"--grad-log-every must be 0 (off) or more, got {self.grad_log_every}."),
            (self.checkpoint_every >= 0,
             f"--checkpoint-every must be 0 (epoch ends only) or more, got {self.checkpoint_every}."),
            (self.num_threads is None or self.num_threads >= 1,
             f"--num-threads must be at least 1, got {self.num_threads}."),
            (self.eval_limit is None or self.eval_limit >= 1,
             f"--eval-limit must be at least 1, got {self.eval_limit}."),
        ]
        for ok, message in checks:
            if not ok:
                raise GNetError(message)


# ---------------------------------------------------------------------------------------------
# Data and randomness


def _datasets(cfg: TrainConfig) -> tuple[GrayImageDataset, GrayImageDataset, list[str], str]:
    """(train set, evaluation set, class names, name of the evaluation split)."""
    if cfg.data == "fashion-mnist":
        train_x, train_y = load_fashion_mnist("train")
        test_x, test_y = load_fashion_mnist("test")
        classes, split = list(FASHION_MNIST_CLASSES), "test"
    else:
        root = Path(cfg.data)
        if (root / "train").is_dir() and (root / "test").is_dir():
            train_x, train_y, classes = load_image_folder(root / "train", cfg.input_size)
            test_x, test_y, _ = load_image_folder(root / "test", cfg.input_size)
            split = "test"
        else:
            # No held-out folder: the accuracy then only says how well the net fits its data.
            train_x, train_y, classes = load_image_folder(root, cfg.input_size)
            test_x, test_y, split = train_x, train_y, "train (no test folder)"
    if cfg.eval_limit is not None:
        test_x, test_y = test_x[: cfg.eval_limit], test_y[: cfg.eval_limit]
    train_set = GrayImageDataset(train_x, train_y, input_size=cfg.input_size, train=True)
    eval_set = GrayImageDataset(test_x, test_y, input_size=cfg.input_size, train=False)
    return train_set, eval_set, classes, f"{split} ({len(eval_set):,} images)"


def _seed_of(*parts: object) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across processes, unlike hash())."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(_seed_of(*parts))


def _card(cfg: TrainConfig, classes: list[str]) -> dict:
    """The model-card facts known at training time (export adds accuracy and provenance)."""
    size = cfg.input_size
    fashion = cfg.data == "fashion-mnist"
    dataset = (
        "Fashion-MNIST (Zalando, MIT licence), Debian package dataset-fashion-mnist"
        if fashion
        else f"image folder {cfg.data}"
    )
    invert = (
        "auto: photos whose border is lighter than their centre are inverted, "
        "because Fashion-MNIST garments are light on a dark background"
        if fashion
        else "none"
    )
    return {
        "dataset": dataset,
        "classes": list(classes),
        "num_classes": len(classes),
        "input_size": size,
        "preprocessing": {
            "grayscale": True,
            "resize": size,
            "mean": [FASHION_MNIST_MEAN] * 3,
            "std": [FASHION_MNIST_STD] * 3,
            "channels": "gray repeated to 3",
            "invert": invert,
        },
        "heads_trained": {"main": True, "aux1": cfg.aux, "aux2": cfg.aux},
    }


# ---------------------------------------------------------------------------------------------
# Training


@torch.no_grad()
def evaluate(net: GoogLeNet, dataset: GrayImageDataset, *, batch_size: int = _EVAL_BATCH) -> dict[str, float]:
    """Top-1 accuracy of each head on ``dataset``, in eval mode (the caller's mode is restored)."""
    correct = dict.fromkeys(HEADS, 0)
    device = next(net.parameters()).device
    with exclusive(net, training=False), torch.inference_mode():
        for start in range(0, len(dataset), batch_size):
            x, y = dataset.batch(torch.arange(start, min(start + batch_size, len(dataset))))
            for head, logits in zip(HEADS, net(x.to(device))):
                correct[head] += int((logits.argmax(1).cpu() == y).sum())
    return {head: correct[head] / len(dataset) for head in HEADS}


def _check_resumable(ckpt: dict, cfg: TrainConfig, path: Path) -> None:
    saved = ckpt["train_config"]
    differing = [f for f in TRAJECTORY_FIELDS if saved.get(f) != getattr(cfg, f)]
    if differing:
        raise CheckpointError(
            f"{path} was trained with different {', '.join(differing)}; resume with the checkpoint's settings."
        )


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
    evaluation, as an interruption would; ``resume`` continues from such a checkpoint.
    ``on_step(step, total_steps)`` is called after every optimizer step (the gradient log is
    flushed by then); returning False stops the run the same way as ``stop_at``.
    """
    cfg.validate()
    previous_threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(cfg, resume=Path(resume) if resume else None, stop_at=stop_at, progress=progress, on_step=on_step)
    finally:
        torch.set_num_threads(previous_threads)


class _Run:
    """The network, optimizer and schedule of one run, plus what a checkpoint must restore."""

    def __init__(self, cfg: TrainConfig, classes: list[str], steps_per_epoch: int) -> None:
        self.cfg, self.classes, self.steps_per_epoch = cfg, classes, steps_per_epoch
        self.device = resolve_device(cfg.device)
        self.total_steps = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.net = googlenet(
            num_classes=len(classes), batch_norm=cfg.batch_norm, branch5x5_kernel=cfg.branch5x5_kernel,
            init=cfg.init, seed=cfg.seed,
        ).to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
        # Momentum stays at the configured 0.9 rather than one-cycle's default 0.85-0.95 cycling.
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=cfg.lr, total_steps=self.total_steps, cycle_momentum=False
        )
        self.layers = {p.name: submodule(self.net, p.name) for p in WEIGHT_LAYERS}
        self.step = 0
        self.wall_before = 0.0  # seconds spent by the runs this one resumes
        self.started = time.monotonic()

    def wall_time(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def resume(self, path: Path) -> None:
        ckpt = load_training_checkpoint(path)
        _check_resumable(ckpt, self.cfg, path)
        self.net.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.wall_before = ckpt["step"], ckpt.get("wall_time_s", 0.0)

    def save(self, path: Path) -> None:
        """Write the checkpoint (``epoch`` counts completed epochs)."""
        train_config = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self.cfg).items()}
        checkpoint = {
            "config": self.net.config.to_dict(),
            "state_dict": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "epoch": self.step // self.steps_per_epoch,
            "train_config": train_config, "classes": list(self.classes), "card": _card(self.cfg, self.classes),
            "wall_time_s": self.wall_time(),
        }
        save_training_checkpoint(checkpoint, path)

    def log_line(self, losses: dict[str, Tensor]) -> str:
        """The gradient-log line of this step; a layer that got no gradient (aux heads with --no-aux) reports 0."""
        grads = [m.weight.grad for m in self.layers.values()]
        norms = tensor_norms(grads)
        return gradlog.format_line(
            self.step, {k: v.item() for k, v in losses.items()}, dict(zip(self.layers, norms))
        )

    def train_step(self, x: Tensor, y: Tensor, grad_log: TextIO) -> tuple[HeadLogits, dict[str, Tensor]]:
        """One SGD step on (x, y), logging the gradients first when the step number says so."""
        # Dropout draws from the global RNG: seeded per step (so a resumed run repeats it), and
        # only for the forward, so neither the caller nor other threads see the reseeding.
        with seeded(_seed_of(self.cfg.seed, "dropout", self.step), self.device):
            out = self.net(x)
        losses = head_losses(out, y, aux_weight=self.cfg.aux_weight, aux=self.cfg.aux)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.step += 1
        if self.cfg.grad_log_every and self.step % self.cfg.grad_log_every == 0:
            grad_log.write(self.log_line(losses) + "\n")
            grad_log.flush()
        self.optimizer.step()
        self.scheduler.step()
        return out, losses


def _run_epoch(
    run: _Run, train_set: GrayImageDataset, end: int, bar: tqdm, grad_log: TextIO, on_step: OnStep | None
) -> bool:
    """Continue the current epoch from ``run.step`` until its end or global step ``end``; True if told to stop."""
    cfg, out_dir = run.cfg, Path(run.cfg.out_dir)
    epoch, offset = divmod(run.step, run.steps_per_epoch)
    order = torch.randperm(len(train_set), generator=_generator(cfg.seed, "shuffle", epoch))
    correct, seen = dict.fromkeys(HEADS, 0), 0
    for batch_index in range(offset, min(run.steps_per_epoch, offset + end - run.step)):
        indices = order[batch_index * cfg.batch_size : (batch_index + 1) * cfg.batch_size]
        x, y = train_set.batch(indices, generator=_generator(cfg.seed, "augment", run.step))
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        out, losses = run.train_step(x, y, grad_log)
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
    accs = ", ".join(f"{h} {correct[h] / seen:.4f}" for h in HEADS)
    if not bar.disable:
        bar.write(f"epoch {epoch + 1} up to step {run.step}/{run.total_steps}: running train accuracy {accs}")
    return False


def _train(
    cfg: TrainConfig, *, resume: Path | None, stop_at: int | None, progress: bool, on_step: OnStep | None
) -> dict:
    train_set, eval_set, classes, eval_split = _datasets(cfg)
    steps_per_epoch = len(train_set) // cfg.batch_size  # drop the last partial batch: batch norm needs > 1 image
    if steps_per_epoch == 0:
        raise DatasetError(f"{cfg.data} has {len(train_set)} training images, fewer than a batch of {cfg.batch_size}.")
    run = _Run(cfg, classes, steps_per_epoch)
    if resume is not None:
        run.resume(resume)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gradlog.trim(out_dir / "grad_log.jsonl", run.step)
    end = run.total_steps if stop_at is None else min(stop_at, run.total_steps)
    run.net.train()
    bar = tqdm(
        total=run.total_steps, initial=run.step, disable=not progress, unit="step", dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 60.0,
    )
    with bar, open(out_dir / "grad_log.jsonl", "a") as grad_log:
        stopped = False
        while run.step < end and not stopped:
            stopped = _run_epoch(run, train_set, end, bar, grad_log, on_step)
    if run.step % steps_per_epoch != 0 and not (cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0):
        run.save(out_dir / "last.pt")  # stopped mid-epoch between checkpoints

    result = {"steps": run.step, "total_steps": run.total_steps, "wall_time_s": round(run.wall_time(), 1),
              "checkpoint": str(out_dir / "last.pt"), "accuracy": None, "eval_split": eval_split}
    if run.step < run.total_steps:
        return result
    result["accuracy"] = evaluate(run.net, eval_set)
    result["wall_time_s"] = round(run.wall_time(), 1)
    final = {**result, "hardware": hardware(), "train_config": dataclasses.asdict(cfg)}
    (out_dir / "final.json").write_text(json.dumps(final, indent=2) + "\n")
    return result
