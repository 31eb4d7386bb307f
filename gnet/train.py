"""Train GoogLeNet with its auxiliary classifiers, resumably, and export the bundled model.

The loss follows the paper (Szegedy et al. 2014, arXiv:1409.4842, section 5): main loss
plus 0.3 x each auxiliary loss. Every random choice (shuffling, augmentation, dropout) is
a deterministic function of (seed, epoch, step), so ``--resume`` from a checkpoint reaches
exactly the parameters of an uninterrupted run. Every few steps one JSON line with the
losses and per-layer gradient norms goes to ``grad_log.jsonl``.

Run as ``python -m gnet train ...`` (or ``python -m gnet.train ...``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TextIO

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from gnet.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    GrayImageDataset,
    load_fashion_mnist,
    load_image_folder,
)
from gnet.device import resolve_device
from gnet.errors import CheckpointError, DatasetError, GNetError
from gnet.guard import exclusive, seeded
from gnet.model import AUX_ATTACH, HEADS, INIT_SCHEMES, GoogLeNet, HeadLogits, googlenet
from gnet.samples import class_slug
from gnet.weights import read_checkpoint

__all__ = [
    "AUX_WEIGHT",
    "MIN_INPUT_SIZE",
    "TrainConfig",
    "batch_statistics_defined",
    "configure_parser",
    "evaluate",
    "export_bundled",
    "export_samples",
    "hardware",
    "head_losses",
    "load_training_checkpoint",
    "main",
    "named_weight_layers",
    "run_cli",
    "train",
]

CHECKPOINT_FORMAT = "gnet-checkpoint"
CHECKPOINT_VERSION = 1
GRAD_LOG_VERSION = 1
BUNDLED_NAME = "fashion_mnist_googlenet"
AUX_WEIGHT = 0.3  # the paper's weight of each auxiliary loss (section 5)
# Below ~15 px a pooling layer's output is empty; 32 px leaves inception5b a 1x1 map, as the
# paper's 224 px leaves it 7x7 (an overall stride of 32).
MIN_INPUT_SIZE = 32
# Below 47 px inception5b's map is 1x1 (stride-2 convolution and ceil-mode pools), so batch norm
# in training mode sees one value per channel for a lone image; pinned by tests/gnet/test_train.py.
_SINGLE_IMAGE_MIN_SIZE = 47
_EVAL_BATCH = 256
OnStep = Callable[[int, int], "bool | None"]  # (step, total_steps) -> False to stop
# Fields that shape the optimisation trajectory: a resumed run must agree on all of them.
_TRAJECTORY_FIELDS = (
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
        checks = [
            (self.input_size >= MIN_INPUT_SIZE,
             f"--input-size {self.input_size} is too small: GoogLeNet needs at least {MIN_INPUT_SIZE} pixels."),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}."),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps must be at least 1, got {self.max_steps}."),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}."),
            (not self.batch_norm or batch_statistics_defined(self.batch_size, self.input_size),
             "Batch norm needs more than one value per channel: use --batch-size 2 or more, "
             f"--input-size {_SINGLE_IMAGE_MIN_SIZE} or more, or --no-batch-norm."),
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


def batch_statistics_defined(batch_size: int, input_size: int) -> bool:
    """Whether batch norm in training mode sees more than one value per channel in every layer.

    A batch of two is always enough; a single image needs inception5b's map to be larger than 1x1.
    """
    return batch_size > 1 or input_size >= _SINGLE_IMAGE_MIN_SIZE


def named_weight_layers(net: GoogLeNet) -> list[tuple[str, nn.Module]]:
    """Every convolution and linear layer under a readable name, in forward (depth) order.

    Names: ``conv1``..``conv3``, ``<inception>.1x1``, ``.3x3.reduce``, ``.3x3``,
    ``.5x5.reduce``, ``.5x5``, ``.pool_proj``, ``aux1.conv``/``.fc1``/``.fc2`` right after
    inception4a (where aux1 branches off), ``aux2.*`` right after inception4d, then ``fc``.
    """
    layers: list[tuple[str, nn.Module]] = [(name, getattr(net, name).conv) for name in ("conv1", "conv2", "conv3")]
    for name, module in net.inception_modules().items():
        b = module.branches
        layers += [
            (f"{name}.1x1", b["1x1"].conv),
            (f"{name}.3x3.reduce", b["3x3"][0].conv),
            (f"{name}.3x3", b["3x3"][1].conv),
            (f"{name}.5x5.reduce", b["5x5"][0].conv),
            (f"{name}.5x5", b["5x5"][1].conv),
            (f"{name}.pool_proj", b["pool_proj"][1].conv),
        ]
        aux = {module: aux for aux, module in AUX_ATTACH.items()}.get(name)
        if aux:
            head = getattr(net, aux)
            layers += [(f"{aux}.conv", head.conv.conv), (f"{aux}.fc1", head.fc1), (f"{aux}.fc2", head.fc2)]
    layers.append(("fc", net.fc))
    return layers


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


# ---------------------------------------------------------------------------------------------
# Checkpoints


def load_training_checkpoint(path: Path | str) -> dict:
    """Load a training checkpoint written by :func:`train`, checking its format."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gnet training checkpoint (no 'format': '{CHECKPOINT_FORMAT}').")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}; this gnet reads version 1.")
    return ckpt


def _save_atomically(obj: dict, path: Path) -> None:
    """torch.save to a temporary file, then rename, so an interrupted save never leaves a broken last.pt."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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


def head_losses(out: HeadLogits, y: Tensor, *, aux_weight: float = AUX_WEIGHT, aux: bool = True) -> dict[str, Tensor]:
    """Batch-mean cross-entropy of each head ("main", "aux1", "aux2") and the "total" trained on.

    total = main + ``aux_weight`` x (aux1 + aux2), the paper's loss (section 5); with
    ``aux=False`` it is the main loss alone.
    """
    losses = {head: F.cross_entropy(logits, y) for head, logits in zip(HEADS, out)}
    total = losses["main"]
    if aux:
        total = total + aux_weight * (losses["aux1"] + losses["aux2"])
    losses["total"] = total
    return losses


def _round4(x: float) -> float:
    return float(f"{x:.4g}")


def _grad_log_line(step: int, losses: dict[str, Tensor], layers: list[tuple[str, nn.Module]]) -> str:
    """One grad_log.jsonl line; a layer that got no gradient (aux heads with --no-aux) reports 0."""
    norms = {
        # float64: without batch norm the early layers' norms fall below float32's range (~1e-38 squared).
        name: _round4(m.weight.grad.double().norm().item()) if m.weight.grad is not None else 0.0
        for name, m in layers
    }
    loss = {k: _round4(v.item()) for k, v in losses.items()}
    return json.dumps({"v": GRAD_LOG_VERSION, "step": step, "loss": loss, "grad_norm": norms})


def _logged_step(line: str) -> int | None:
    """The step of a gradient-log line, or None for a line that is not a complete entry."""
    try:
        step = json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


def _trim_grad_log(path: Path, step: int) -> None:
    """Drop log lines past ``step``: a resumed run may have logged beyond its checkpoint, a fresh one starts empty.

    Lines that do not parse go too: a run killed while writing leaves half a line at the end.
    """
    if not path.exists():
        return
    text = path.read_text()
    kept = [line for line in text.splitlines() if (logged := _logged_step(line)) is not None and logged <= step]
    trimmed = "".join(line + "\n" for line in kept)
    if trimmed != text:
        path.write_text(trimmed)


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
    differing = [f for f in _TRAJECTORY_FIELDS if saved.get(f) != getattr(cfg, f)]
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
        self.layers = named_weight_layers(self.net)
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
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": self.net.config.to_dict(),
            "state_dict": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "epoch": self.step // self.steps_per_epoch,
            "train_config": train_config, "classes": list(self.classes), "card": _card(self.cfg, self.classes),
            "wall_time_s": self.wall_time(),
        }
        _save_atomically(checkpoint, path)

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
            grad_log.write(_grad_log_line(self.step, losses, self.layers) + "\n")
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
    _trim_grad_log(out_dir / "grad_log.jsonl", run.step)
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


# ---------------------------------------------------------------------------------------------
# Export


def export_bundled(
    checkpoint_path: Path | str, assets_dir: Path | str, *, accuracy: dict, command: str, wall_time_s: float,
    hardware: str, commit: str,
) -> tuple[Path, Path]:
    """Write ``fashion_mnist_googlenet.pt`` (float16 state dict) and its ``.json`` model card, named after the data.

    float16 halves the file; a loader casts the tensors back to float32. ``accuracy`` holds
    the per-head top-1 and optionally "split" (default "test (10,000 images)").
    """
    ckpt = load_training_checkpoint(checkpoint_path)
    assets_dir = Path(assets_dir)
    assets_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    weights_path = assets_dir / f"{BUNDLED_NAME}.pt"
    torch.save(state, weights_path)
    tc = ckpt["train_config"]
    card = {
        "name": f"GoogLeNet on {_dataset_title(tc['data'])}",
        "source": "bundled",
        **ckpt["card"],
        "config": ckpt["config"],
        "accuracy": {**{h: accuracy[h] for h in HEADS}, "split": accuracy.get("split", "test (10,000 images)")},
        "training": {
            "command": command, "epochs": tc["epochs"], "steps": ckpt["step"], "wall_time_s": wall_time_s,
            "hardware": hardware, "commit": commit, "train_config": tc,
        },
    }
    card_path = assets_dir / f"{BUNDLED_NAME}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return weights_path, card_path


def _dataset_title(data: str) -> str:
    """How a model card names the training data: "Fashion-MNIST" or the image folder's name."""
    if data == "fashion-mnist":
        return "Fashion-MNIST"
    return Path(os.path.abspath(data)).name or data  # abspath: "." and "runs/imgs/" have names too


_SAMPLES_LICENSE = """\
# Sample images

The `fmnist_*.png` files are images from the Fashion-MNIST test set, unchanged (28x28
grayscale), two per class; the number in each name is the image's index in the test set.

Fashion-MNIST: Copyright (c) 2017 Zalando SE (Zalando Research),
https://github.com/zalandoresearch/fashion-mnist, released under the MIT Licence:

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def export_samples(assets_dir: Path | str, *, per_class: int = 2, root: Path | str | None = None) -> list[Path]:
    """Write the first ``per_class`` test images of each class as 28x28 PNGs into ``assets_dir/samples``."""
    from PIL import Image

    images, labels = load_fashion_mnist("test", root)
    out = Path(assets_dir) / "samples"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        for index in (labels == label).nonzero().flatten()[:per_class].tolist():
            path = out / f"fmnist_{class_slug(name)}_{index}.png"
            Image.fromarray(images[index].numpy(), mode="L").save(path)
            written.append(path)
    (out / "LICENSE.md").write_text(_SAMPLES_LICENSE)
    return written


# ---------------------------------------------------------------------------------------------
# Command line


def hardware() -> str:
    """A one-line description of the CPU and torch build that ran the training."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _git_commit() -> str:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 else "unknown (not committed)"


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``p``."""
    d = TrainConfig()
    p.add_argument("--data", default=d.data, help="'fashion-mnist' or an ImageFolder path (root/<class>/<image>)")
    p.add_argument("--input-size", type=int, default=d.input_size, help="square input side in pixels")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=None, help="stop the schedule after this many steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="one-cycle peak learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum, help="Nesterov momentum")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--aux-weight", type=float, default=d.aux_weight, help="weight of each auxiliary loss")
    p.add_argument("--no-aux", dest="aux", action="store_false", help="train on the main loss only")
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", help="the paper's net (LRN)")
    p.add_argument("--branch5x5-kernel", type=int, choices=(3, 5), default=d.branch5x5_kernel)
    p.add_argument("--init", choices=INIT_SCHEMES, default=d.init)
    p.add_argument("--out-dir", default=None,
                   help=f"where last.pt, grad_log.jsonl, final.json go (default {d.out_dir}, or the --resume folder)")
    p.add_argument("--grad-log-every", type=int, default=d.grad_log_every, help="0 disables the gradient log")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: $GNET_DEVICE or auto)")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--resume", type=Path, default=None, help="continue from this last.pt (uses its settings)")
    p.add_argument("--stop-at", type=int, default=None, help="stop after this global step (resume later)")
    p.add_argument("--export-bundled", type=Path, default=None, metavar="ASSETS_DIR",
                   help="after training, write the float16 weights and model card into this folder")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _command_line() -> str:
    argv0 = Path(sys.argv[0])
    prog = "python -m gnet.train" if argv0.name == "train.py" else "python -m gnet"
    return f"{prog} {shlex.join(sys.argv[1:])}".strip()


def run_cli(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments; a user error propagates as :class:`GNetError`."""
    out_dir = args.out_dir or (args.resume.parent if args.resume is not None else TrainConfig.out_dir)
    runtime = {
        "out_dir": str(out_dir), "grad_log_every": args.grad_log_every,
        "checkpoint_every": args.checkpoint_every, "num_threads": args.num_threads, "eval_limit": args.eval_limit,
        "device": args.device,
    }
    if args.resume is not None:
        saved = load_training_checkpoint(args.resume)["train_config"]
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{**{k: v for k, v in saved.items() if k in fields}, **runtime})
    else:
        cfg = TrainConfig(**{n: getattr(args, n) for n in _TRAJECTORY_FIELDS}, **runtime, command=_command_line())
    result = train(cfg, resume=args.resume, stop_at=args.stop_at, progress=args.progress)
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
            wall_time_s=result["wall_time_s"], hardware=hardware(), commit=_git_commit(),
        )
        print("exported " + ", ".join(map(str, paths)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gnet.train``: user errors print one sentence and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m gnet.train", description=__doc__.splitlines()[0])
    configure_parser(parser)
    try:
        return run_cli(parser.parse_args(argv))
    except GNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
