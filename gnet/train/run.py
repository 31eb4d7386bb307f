"""The state of one training run in one process: the net (wrapped for data parallelism), optimizer, schedule, step.

:class:`TrainRun` builds what :mod:`gnet.train.loop` optimises, takes one optimizer step, and writes
and restores the checkpoint. Two schedules: one-cycle (what the bundled model used) and the
paper's (Szegedy et al. 2014, section 6: "decreasing the learning rate by 4% every 8 epochs").
On CUDA, ``amp`` runs the forward in bfloat16 where the GPU supports it, else in float16
with a gradient scaler; the net is channels_last everywhere.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..errors import CheckpointError
from ..guard import derive_seed, seeded
from ..inspect.grad_norms import tensor_norms
from ..net.layers import present_layers
from ..net.losses import head_losses
from ..net.model import HeadLogits, googlenet
from ..weights.checkpoint import save_training_checkpoint
from . import gradlog
from .distributed import Dist

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["PAPER_DECAY", "PAPER_DECAY_EPOCHS", "TrainRun"]

PAPER_DECAY = 0.96  # the paper's schedule: the learning rate times 0.96 ...
PAPER_DECAY_EPOCHS = 8  # ... every 8 epochs


class TrainRun:
    """The network, optimizer, schedule and scaler of one run, plus what a checkpoint must restore."""

    def __init__(
        self, cfg: TrainConfig, classes: list[str], steps_per_epoch: int, n_train: int, device: torch.device, d: Dist,
        card: dict,
    ) -> None:
        self.cfg, self.classes, self.steps_per_epoch, self.n_train = cfg, classes, steps_per_epoch, n_train
        self.device, self.d, self.card = device, d, card
        self.total_steps = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.net = googlenet(
            num_classes=len(classes), batch_norm=cfg.batch_norm, branch5x5_kernel=cfg.branch5x5_kernel,
            init=cfg.init, seed=cfg.seed, dropout=cfg.dropout, dropout_aux=cfg.dropout_aux, **cfg.design(),
        ).to(device, memory_format=torch.channels_last)
        # The forward goes through DDP when there are several processes; it averages the gradients.
        # Without aux losses the aux heads get no gradient, which DDP must be told about.
        self.model = self.net if d.world == 1 else DistributedDataParallel(
            self.net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=not cfg.aux,
        )
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        if cfg.schedule == "paper":
            self.scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.StepLR(
                self.optimizer, step_size=PAPER_DECAY_EPOCHS * steps_per_epoch, gamma=PAPER_DECAY
            )
        else:
            # Momentum stays at the configured 0.9 rather than one-cycle's default 0.85-0.95 cycling.
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=cfg.lr, total_steps=self.total_steps, cycle_momentum=False
            )
        self.amp_dtype = _amp_dtype() if cfg.amp else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.layers = present_layers(self.net)
        self.step = 0
        self.skipped: list[str] = []  # corrupt images this process replaced, by sentence
        self.first_step_done: float | None = None  # when this session's first step ended (throughput is timed after)
        self.wall_before = 0.0  # seconds spent by the runs this one resumes
        self.started = time.monotonic()

    def wall_time(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def restore(self, ckpt: dict, path: Path) -> None:
        """Continue from checkpoint ``ckpt`` (read from ``path``), maybe written by another number of processes."""
        if list(ckpt.get("classes", [])) != self.classes:
            raise CheckpointError(
                f"{path} was trained on the classes {_few(ckpt.get('classes', []))} but {self.cfg.data} has "
                f"{_few(self.classes)}: resume on the data it was trained on, or start a new run."
            )
        if ckpt.get("n_train", self.n_train) != self.n_train:
            raise CheckpointError(
                f"{path} was trained on {ckpt['n_train']:,} images but {self.cfg.data} now holds {self.n_train:,}: "
                "resume on the same images, or start a new run."
            )
        self.net.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.wall_before = ckpt["step"], ckpt.get("wall_time_s", 0.0)

    def save(self, path: Path) -> None:
        """Write the checkpoint (``epoch`` counts completed epochs); only rank 0 writes."""
        if not self.d.is_main:
            return
        train_config = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self.cfg).items()}
        checkpoint = {
            "config": self.net.config.to_dict(),
            "state_dict": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "epoch": self.step // self.steps_per_epoch,
            "train_config": train_config, "classes": list(self.classes), "card": self.card,
            "wall_time_s": self.wall_time(), "n_train": self.n_train, "world_size": self.d.world,
        }
        if self.scaler.is_enabled():
            checkpoint["scaler"] = self.scaler.state_dict()
        save_training_checkpoint(checkpoint, path)

    def log_line(self, losses: dict[str, Tensor]) -> str:
        """The gradient-log line of this step; a layer that got no gradient (aux heads with --no-aux) reports 0."""
        grads = [m.weight.grad for m in self.layers.values()]
        norms = tensor_norms(grads)
        return gradlog.format_line(
            self.step, {k: v.item() for k, v in losses.items()}, dict(zip(self.layers, norms))
        )

    def train_step(self, x: Tensor, y: Tensor, grad_log: TextIO | None) -> tuple[HeadLogits, dict[str, Tensor]]:
        """One SGD step on (x, y), logging the gradients first when the step number says so."""
        # Dropout draws from the global RNG: seeded per step (so a resumed run repeats it), and
        # only for the forward, so neither the caller nor other threads see the reseeding. Each
        # process draws its own masks (rank 0 the same as a one-process run).
        parts = (self.cfg.seed, "dropout", self.step) + ((self.d.rank,) if self.d.rank else ())
        with seeded(derive_seed(*parts), self.device), torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            out = self.model(x)
            losses = head_losses(out, y, aux_weight=self.cfg.aux_weight, aux=self.cfg.aux)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.step += 1
        if self.cfg.grad_log_every and self.step % self.cfg.grad_log_every == 0:
            self.scaler.unscale_(self.optimizer)  # the log reports true gradients, not scaled ones
            means = self.d.mean_scalars(losses)  # the global batch's losses (a collective: every rank takes part)
            if grad_log is not None:
                grad_log.write(self.log_line(means) + "\n")
                grad_log.flush()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return out, losses


def _amp_dtype() -> torch.dtype:
    """bfloat16 where the GPU computes it natively (no scaler needed), else float16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
