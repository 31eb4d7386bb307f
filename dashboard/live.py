"""A short live training run from the Gradients page: gnet.train.loop with progress, in chunks, stoppable."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gnet.train.config import TrainConfig
from gnet.train.gradlog import read_grad_log
from gnet.train.loop import train

__all__ = ["LIVE_CHUNK", "LIVE_EVAL_IMAGES", "LIVE_LOG_EVERY", "LIVE_MAX_STEPS", "LiveRun", "LiveRunRequest", "train_live"]

LIVE_MAX_STEPS = 100  # a live run stays under a minute or so on a shared CPU
LIVE_CHUNK = 5  # steps between progress updates (and chances to stop) of a live run
LIVE_LOG_EVERY = 5  # steps between gradient-log lines of a live run
LIVE_EVAL_IMAGES = 200  # test images a finished live run is evaluated on


@dataclass(frozen=True)
class LiveRunRequest:
    """A short live training run on Fashion-MNIST (the form on the Gradients page)."""

    batch_norm: bool = False
    aux: bool = True
    init: str = "trunc_normal"
    steps: int = 30
    batch_size: int = 16
    input_size: int = 64

    @property
    def name(self) -> str:
        """Named like the recorded runs: ``nobn_aux_trunc_normal``."""
        return f"{'bn' if self.batch_norm else 'nobn'}_{'aux' if self.aux else 'noaux'}_{self.init}"

    def config(self, out_dir: str) -> TrainConfig:
        """The recorded runs' settings, smaller; torch's thread count is left alone (it is process-wide)."""
        return TrainConfig(
            input_size=self.input_size, epochs=1, max_steps=self.steps, batch_size=self.batch_size, aux=self.aux,
            batch_norm=self.batch_norm, branch5x5_kernel=5, init=self.init, out_dir=out_dir,
            grad_log_every=LIVE_LOG_EVERY, checkpoint_every=0, num_threads=None, eval_limit=LIVE_EVAL_IMAGES,
            command="dashboard: Gradients page, live run",
        )


@dataclass(frozen=True)
class LiveRun:
    """A live run so far: its gradient log as tables and, once finished, the test accuracy."""

    request: LiveRunRequest
    step: int
    grad_norms: pd.DataFrame  # run, step, layer, depth, kind, norm (gnet.train.runs.read_grad_log)
    losses: pd.DataFrame  # run, step, head, loss
    accuracy: dict[str, float] | None  # per head on the first LIVE_EVAL_IMAGES test images; None until the end
    eval_split: str  # what the accuracy is measured on, e.g. "test (200 images)"
    wall_time_s: float


def train_live(
    request: LiveRunRequest, on_chunk: Callable[[LiveRun], bool], *, chunk: int = LIVE_CHUNK
) -> LiveRun:
    """Train ``request`` in one gnet.train.loop run, reporting every ``chunk`` steps.

    Every ``chunk`` steps, ``on_chunk`` gets the run so far and returns whether to go on: it
    draws the progress and checks the session's stop flag. Returns the run as it ended
    (``accuracy`` None if stopped early). The run's files live in a temporary folder that is
    removed however the run ends. Raises gnet.DatasetError when Fashion-MNIST is not installed.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gnet-live-") as out:
        log = Path(out) / "grad_log.jsonl"

        def on_step(step: int, total: int) -> bool:
            if step % chunk and step != total:
                return True
            norms, losses = read_grad_log(log, request.name)
            return on_chunk(LiveRun(request, step, norms, losses, None, "", time.monotonic() - started))

        result = train(request.config(out), progress=False, on_step=on_step)
        norms, losses = read_grad_log(log, request.name)
        return LiveRun(
            request, result["steps"], norms, losses, result["accuracy"], result["eval_split"], result["wall_time_s"]
        )
