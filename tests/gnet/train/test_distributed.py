"""Data-parallel training: 2 gloo processes under torchrun match 1 process on the same global batch,
a 2-process checkpoint resumes in 1 process, and the launcher keeps a user error to one sentence.

The net is the paper's variant without batch norm and without dropout: with them, each process
normalizes with its own batch's statistics and draws its own dropout masks (DDP's design), so
the runs would differ by more than float rounding. Everything else (the shuffle, each image's
random crop and flip, the loss averaging, the optimizer and schedule) must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnet.train.config import TrainConfig
from gnet.train.loop import train
from gnet.weights.checkpoint import load_training_checkpoint
from tests.conftest import write_colour_folder

ROOT = Path(__file__).resolve().parents[3]
STEPS, STOP = 4, 2  # 48 images, global batch 8: 6 steps per epoch; the 2-process run stops at step 2
SETTINGS = dict(input_size=32, batch_size=8, epochs=1, max_steps=STEPS, batch_norm=False, dropout=0.0, dropout_aux=0.0,
                workers=0, checkpoint_every=0, grad_log_every=1, num_threads=1)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _argv(folder: Path, out: Path) -> list[str]:
    return [
        "train", "--data", str(folder), "--input-size", "32", "--batch-size", "8", "--epochs", "1",
        "--max-steps", str(STEPS), "--no-batch-norm", "--dropout", "0", "--dropout-aux", "0", "--workers", "0",
        "--checkpoint-every", "0", "--grad-log-every", "1", "--num-threads", "1", "--no-progress", "--out-dir", str(out),
    ]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colour"))


@pytest.fixture(scope="module")
def two_processes(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchrun --nproc_per_node=2 -m gnet train ..., stopped after step 2: its out dir."""
    out = tmp_path_factory.mktemp("two")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gnet",
               *_argv(folder, out), "--stop-at", str(STOP)]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("stopped at step 2/4") == 1  # rank 0 alone reports
    return out


@pytest.fixture(scope="module")
def one_process(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same run in this process: its step-2 checkpoint, and the result after all 4 steps."""
    out = tmp_path_factory.mktemp("one")
    cfg = TrainConfig(data=str(folder), out_dir=str(out), **SETTINGS)
    train(cfg, stop_at=STOP, progress=False)
    (out / "step2.pt").write_bytes((out / "last.pt").read_bytes())
    return out, train(cfg, resume=out / "last.pt", progress=False)


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_two_gloo_processes_match_one_process(two_processes: Path, one_process: tuple[Path, dict]) -> None:
    one = load_training_checkpoint(one_process[0] / "step2.pt")
    two = load_training_checkpoint(two_processes / "last.pt")
    assert two["world_size"] == 2 and one["world_size"] == 1 and two["step"] == one["step"] == STOP
    difference = _max_difference(one["state_dict"], two["state_dict"])
    assert difference < 1e-5, difference
    momentum = [s["momentum_buffer"] for s in one["optimizer"]["state"].values()]
    momentum_two = [s["momentum_buffer"] for s in two["optimizer"]["state"].values()]
    assert max(float((a - b).abs().max()) for a, b in zip(momentum, momentum_two, strict=True)) < 1e-5
    # The gradient log: rank 0 alone writes it, with the global batch's losses.
    log_one = [json.loads(line) for line in (one_process[0] / "grad_log.jsonl").read_text().splitlines()[:STOP]]
    log_two = [json.loads(line) for line in (two_processes / "grad_log.jsonl").read_text().splitlines()]
    assert len(log_two) == STOP
    for a, b in zip(log_one, log_two):
        assert a["step"] == b["step"] and a["grad_norm"].keys() == b["grad_norm"].keys()
        for part in ("loss", "grad_norm"):
            assert b[part] == pytest.approx(a[part], rel=2e-3)


def test_a_two_process_checkpoint_resumes_in_one_process(
    two_processes: Path, one_process: tuple[Path, dict], folder: Path, tmp_path: Path
) -> None:
    resumed = train(
        TrainConfig(data=str(folder), out_dir=str(two_processes), **SETTINGS),
        resume=two_processes / "last.pt", progress=False,
    )
    assert resumed["steps"] == STEPS and resumed["processes"] == 1 and resumed["accuracy"] is not None
    straight = load_training_checkpoint(one_process[0] / "last.pt")["state_dict"]
    difference = _max_difference(straight, load_training_checkpoint(resumed["checkpoint"])["state_dict"])
    assert difference < 1e-5, difference
    assert resumed["accuracy"] == pytest.approx(one_process[1]["accuracy"])


def test_the_launcher_turns_a_user_error_into_one_sentence_and_exit_2(tmp_path: Path) -> None:
    """``gnet train --nproc-per-node 3`` on 2 images: every process refuses; the launcher adds nothing."""
    root = write_colour_folder(tmp_path / "f", classes=("a", "b"), per_class=1)
    command = [sys.executable, "-m", "gnet", *_argv(root, tmp_path / "run"), "--nproc-per-node", "3"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr == (
        f"error: {root} has 2 training images, fewer than the 3 processes: use --nproc_per_node 2 or fewer.\n"
    )
    assert not (tmp_path / "run").exists()
