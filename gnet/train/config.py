"""One training run's settings (:class:`TrainConfig`), and which of them shape its trajectory.

Its own module, below the loop (:mod:`gnet.train.loop`) and one run's state
(:mod:`gnet.train.run`), since both read it: the CLI builds its options from these fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError, GNetError
from ..net.losses import AUX_WEIGHT
from ..net.model import (
    CLASSIFIERS,
    INIT_SCHEMES,
    SINGLE_IMAGE_MIN_SIZE,
    STEMS,
    batch_statistics_defined,
    check_input_size,
)

__all__ = ["SCHEDULES", "TRAJECTORY_FIELDS", "TrainConfig"]

SCHEDULES = ("one-cycle", "paper")
# Fields that shape the optimisation trajectory: a resumed run must agree on all of them.
TRAJECTORY_FIELDS = (
    "data", "input_size", "epochs", "max_steps", "batch_size", "lr", "momentum", "weight_decay",
    "seed", "aux_weight", "aux", "batch_norm", "branch5x5_kernel", "init",
    "schedule", "nesterov", "dropout", "dropout_aux", "stem", "reductions", "pool_proj", "classifier",
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
    init: str = "trunc_normal"  # weight initialisation scheme, see gnet.net.model.INIT_SCHEMES
    schedule: str = "one-cycle"  # "one-cycle" (the bundled model's) or "paper" (x0.96 every 8 epochs)
    nesterov: bool = True  # Nesterov momentum, standard for SGD on convnets; the paper used plain momentum
    dropout: float | None = None  # main head; None: 0.2 with batch norm (torchvision), 0.4 without (the paper)
    dropout_aux: float = 0.7  # the auxiliary heads' dropout, the paper's 70%
    stem: str = "paper"  # the design lab's choices (gnet.net.model.GoogLeNetConfig); the defaults are the paper's
    reductions: bool = True
    pool_proj: bool = True
    classifier: str = "gap"  # "fc" sizes the classifier for input_size
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

    def design(self) -> dict:
        """The design lab's keyword arguments of :func:`gnet.net.model.googlenet` for this run."""
        return {
            "stem": self.stem, "reductions": self.reductions, "pool_proj": self.pool_proj,
            "classifier": self.classifier, "fc_input_size": self.input_size if self.classifier == "fc" else None,
        }

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
            (self.stem in STEMS, f"--stem must be one of {', '.join(STEMS)}, got {self.stem!r}."),
            (self.classifier in CLASSIFIERS,
             f"--classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}."),
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
