"""Training on a colour image folder in one process: the checkpoint's card, loading it back, the schedules, bad input.

A 3-class folder of 16 small RGB images per class, 32x32 input, a few steps, one thread.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

import gnet
from gnet.cli import main as gnet_main
from gnet.errors import CheckpointError, GNetError
from gnet.train.config import TrainConfig
from gnet.train.distributed import SINGLE
from gnet.train.loop import check_resumable, train
from gnet.train.run import PAPER_DECAY, TrainRun
from gnet.weights.checkpoint import load_training_checkpoint, save_training_checkpoint
from tests.conftest import write_colour_folder

COMMON = ["--input-size", "32", "--batch-size", "8", "--num-threads", "1", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colour"))


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = TrainConfig(
        data=str(folder), input_size=32, epochs=1, max_steps=2, batch_size=8, num_threads=1, workers=0,
        checkpoint_every=0, grad_log_every=1, out_dir=str(tmp_path_factory.mktemp("run")),
    )
    return train(cfg, progress=False)


def test_colour_run_records_its_preprocessing_in_the_card(trained: dict) -> None:
    assert trained["steps"] == 2 and trained["eval_split"] == "train (no val folder) (48 images)"
    assert trained["skipped_images"] == [] and trained["processes"] == 1
    ckpt = load_training_checkpoint(trained["checkpoint"])
    card = ckpt["card"]
    assert card["classes"] == ["blue", "green", "red"] and card["input_size"] == 32
    pre = card["preprocessing"]
    assert pre["colour"] == "rgb" and pre["grayscale"] is False and pre["crop"] == 32 and pre["resize"] == 37
    assert pre["mean"] == [0.485, 0.456, 0.406] and pre["std"] == [0.229, 0.224, 0.225]
    assert ckpt["n_train"] == 48 and ckpt["world_size"] == 1


def test_a_trained_checkpoint_preprocesses_photos_in_colour_with_no_flags(trained: dict, folder: Path) -> None:
    loaded = gnet.load(trained["checkpoint"], "cpu")
    assert loaded.classes == ["blue", "green", "red"] and loaded.card.input_size == 32
    assert isinstance(loaded.transform, v2.Compose)
    x = loaded.preprocess(folder / "red" / "000.png")
    assert x.shape == (1, 3, 32, 32)
    assert not torch.equal(x[0, 0], x[0, 1])  # colour, not gray repeated
    analysis = gnet.analyze(loaded, folder / "red" / "000.png")
    assert analysis.heads["main"].top[0].label in loaded.classes


def test_the_paper_schedule_lowers_the_rate_4_percent_every_8_epochs(folder: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(data=str(folder), input_size=32, epochs=20, batch_size=8, schedule="paper", lr=0.1,
                      nesterov=False, out_dir=str(tmp_path))
    run = TrainRun(cfg, ["a", "b"], 6, 48, torch.device("cpu"), SINGLE, {})
    assert run.optimizer.param_groups[0]["nesterov"] is False
    rates = []
    for _ in range(6 * 17):
        rates.append(run.optimizer.param_groups[0]["lr"])
        run.optimizer.step()  # no gradients: changes nothing, but keeps the scheduler's call order
        run.scheduler.step()
    assert rates[0] == rates[6 * 8 - 1] == 0.1
    assert rates[6 * 8] == pytest.approx(0.1 * PAPER_DECAY) and rates[6 * 16] == pytest.approx(0.1 * PAPER_DECAY**2)


def test_a_checkpoint_from_before_the_new_settings_resumes(trained: dict, folder: Path, tmp_path: Path) -> None:
    ckpt = load_training_checkpoint(trained["checkpoint"])
    for name in ("schedule", "nesterov", "dropout", "dropout_aux"):
        del ckpt["train_config"][name]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in ckpt["train_config"].items() if k in fields})
    check_resumable(ckpt, cfg, Path("old.pt"))  # missing fields count as their defaults
    with pytest.raises(CheckpointError, match="schedule"):
        check_resumable(ckpt, dataclasses.replace(cfg, schedule="paper"), Path("old.pt"))


def _one_sentence(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_one_class_is_one_sentence_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_colour_folder(tmp_path / "f", classes=("only",), per_class=4)
    assert gnet_main(["train", "--data", str(root), *COMMON, "--out-dir", str(tmp_path / "run")]) == 2
    _one_sentence(capsys, "one class subfolder ('only')")
    assert not (tmp_path / "run").exists()


def test_an_unreadable_image_is_named_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_colour_folder(tmp_path / "f", classes=("a", "b"), per_class=4)
    (root / "b" / "002.png").write_bytes(b"GIF89a broken")
    assert gnet_main(["train", "--data", str(root), *COMMON, "--out-dir", str(tmp_path / "run")]) == 2
    _one_sentence(capsys, "002.png", "fix or remove it")
    assert not (tmp_path / "run").exists()


def test_amp_on_the_cpu_is_one_sentence(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--data", str(folder), *COMMON, "--device", "cpu", "--amp", "--out-dir", str(tmp_path / "run")]
    assert gnet_main(argv) == 2
    _one_sentence(capsys, "--amp", "CUDA GPU", "drop --amp")
    assert not (tmp_path / "run").exists()


def test_more_processes_than_images_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As torchrun would start it: rank 0 of 4, on a folder of 3 images (checked before any process group)."""
    root = write_colour_folder(tmp_path / "f", classes=("a", "b", "c"), per_class=1)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "0")
    argv = ["train", "--data", str(root), *COMMON, "--batch-size", "4", "--out-dir", str(tmp_path / "run")]
    assert gnet_main(argv) == 2
    _one_sentence(capsys, "3 training images, fewer than the 4 processes", "--nproc_per_node 3 or fewer")
    monkeypatch.setenv("RANK", "2")  # the other ranks meet the same error and stay silent
    assert gnet_main(argv) == 2
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "run").exists()


def test_a_batch_that_does_not_split_over_the_processes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    cfg = TrainConfig(data=str(folder), input_size=32, batch_size=8, workers=0)
    with pytest.raises(GNetError, match=re.escape("--batch-size 8 (the global batch) does not split evenly over 3")):
        train(cfg, progress=False)


def test_resuming_on_other_classes_is_one_sentence(
    trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = load_training_checkpoint(trained["checkpoint"])
    other = write_colour_folder(tmp_path / "f", classes=("blue", "green", "yellow"))
    ckpt["train_config"]["data"] = str(other)  # the same run, pointed at a folder whose classes changed
    path = tmp_path / "last.pt"
    save_training_checkpoint(ckpt, path)
    before = path.read_bytes()
    assert gnet_main(["train", "--resume", str(path), "--no-progress", "--num-threads", "1", "--workers", "0"]) == 2
    _one_sentence(capsys, "was trained on the classes blue, green, red", "yellow")
    assert path.read_bytes() == before and not (tmp_path / "grad_log.jsonl").exists()


def test_the_launcher_option_is_refused_under_torchrun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert gnet_main(["train", "--nproc-per-node", "2", "--no-progress"]) == 2
    _one_sentence(capsys, "--nproc-per-node starts the processes itself")
