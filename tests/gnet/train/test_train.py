"""Training: which heads learn, exact resumption, the gradient log, exports and the CLI.

Everything runs on a tiny fake Fashion-MNIST (random 28x28 images in the real file layout,
pointed to by GNET_FASHION_MNIST_DIR) at 32x32 input, a few steps, one thread.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import gnet
from gnet.cli import main as gnet_main
from gnet.errors import CheckpointError, DatasetError, GNetError
from gnet.net.layers import HEADS, WEIGHT_LAYERS
from gnet.net.losses import AUX_WEIGHT, head_losses
from gnet.net.model import HeadLogits, googlenet
from gnet.train import gradlog
from gnet.train.config import TrainConfig
from gnet.train.loop import train
from gnet.weights.checkpoint import load_checkpoint, load_training_checkpoint
from gnet.weights.export import export_bundled, export_samples
from tests.conftest import write_fake_fashion_mnist


def main(argv: list[str]) -> int:
    return gnet_main(["train", *argv])


@pytest.fixture(scope="module")
def fake_fmnist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """16 training and 30 test images (3 per class), installed as the Fashion-MNIST directory."""
    root = write_fake_fashion_mnist(tmp_path_factory.mktemp("fmnist"), n_train=16, n_test=30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GNET_FASHION_MNIST_DIR", str(root))
        yield root


def tiny(out_dir: Path, **overrides) -> TrainConfig:
    """4 steps per epoch (16 images, batch 4) at 32x32, evaluated on 4 images."""
    base = dict(
        input_size=32, epochs=1, batch_size=4, num_threads=1, eval_limit=4, checkpoint_every=0,
        grad_log_every=1, out_dir=str(out_dir),
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def one_step(fake_fmnist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, dict]:
    cfg = tiny(tmp_path_factory.mktemp("one_step"), max_steps=1)
    return cfg, train(cfg, progress=False)


def _initial_state(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    return googlenet(num_classes=10, seed=cfg.seed).state_dict()


def test_one_step_trains_all_three_heads(one_step: tuple[TrainConfig, dict]) -> None:
    cfg, result = one_step
    assert result["steps"] == 1 and set(result["accuracy"]) == set(HEADS)
    assert result["eval_split"] == "test (4 images)"
    before, after = _initial_state(cfg), load_training_checkpoint(result["checkpoint"])["state_dict"]
    for key in ("aux1.fc2.weight", "aux2.fc2.weight", "fc.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_no_aux_leaves_aux_heads_untouched(fake_fmnist: Path, tmp_path: Path) -> None:
    # Without weight decay an aux weight can only move through its (absent) loss gradient.
    cfg = tiny(tmp_path, max_steps=1, aux=False, weight_decay=0.0)
    result = train(cfg, progress=False)
    before, after = _initial_state(cfg), load_training_checkpoint(result["checkpoint"])["state_dict"]
    for key in ("aux1.conv.conv.weight", "aux1.fc1.weight", "aux1.fc2.weight", "aux2.fc2.weight"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    log = [json.loads(line) for line in (tmp_path / "grad_log.jsonl").read_text().splitlines()]
    assert log[0]["grad_norm"]["aux1.fc2"] == 0.0 and log[0]["loss"]["total"] == log[0]["loss"]["main"]
    assert load_training_checkpoint(result["checkpoint"])["card"]["heads_trained"] == {
        "main": True, "aux1": False, "aux2": False,
    }


def test_resume_continues_exactly(fake_fmnist: Path, tmp_path: Path) -> None:
    """8 steps straight == 2 steps, 1 more, then resuming the step-2 checkpoint to the end."""
    whole = train(tiny(tmp_path / "whole", epochs=2), progress=False)
    cfg = tiny(tmp_path / "parts", epochs=2)
    assert train(cfg, stop_at=2, progress=False)["accuracy"] is None
    shutil.copy(tmp_path / "parts" / "last.pt", tmp_path / "step2.pt")
    train(cfg, resume=tmp_path / "parts" / "last.pt", stop_at=3, progress=False)  # logs step 3 ...
    parts = train(cfg, resume=tmp_path / "step2.pt", progress=False)  # ... which resuming at 2 must drop
    assert parts["steps"] == whole["steps"] == 8 and parts["accuracy"] == whole["accuracy"]
    a = load_training_checkpoint(whole["checkpoint"])["state_dict"]
    b = load_training_checkpoint(parts["checkpoint"])["state_dict"]
    assert a.keys() == b.keys()
    assert max((a[k].double() - b[k].double()).abs().max().item() for k in a) == 0
    assert (tmp_path / "whole" / "grad_log.jsonl").read_text() == (tmp_path / "parts" / "grad_log.jsonl").read_text()


def test_resume_refuses_other_settings(one_step: tuple[TrainConfig, dict], tmp_path: Path) -> None:
    cfg, result = one_step
    with pytest.raises(CheckpointError, match="lr"):
        train(tiny(tmp_path, max_steps=1, lr=0.1), resume=result["checkpoint"], progress=False)


def test_checkpoint_layout(one_step: tuple[TrainConfig, dict]) -> None:
    cfg, result = one_step
    ckpt = torch.load(result["checkpoint"], weights_only=True)
    assert ckpt["format"] == "gnet-checkpoint" and ckpt["version"] == 1
    assert ckpt["step"] == 1 and ckpt["epoch"] == 0 and len(ckpt["classes"]) == 10
    assert ckpt["config"]["num_classes"] == 10 and ckpt["train_config"]["out_dir"] == cfg.out_dir
    assert {"state_dict", "optimizer", "scheduler", "card"} <= ckpt.keys()


def test_grad_log_lines(one_step: tuple[TrainConfig, dict]) -> None:
    cfg, _ = one_step
    (line,) = (Path(cfg.out_dir) / "grad_log.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry.keys() == {"v", "step", "loss", "grad_norm"} and entry["v"] == 2 and entry["step"] == 1
    assert entry["loss"].keys() == {"main", "aux1", "aux2", "total"}
    assert list(entry["grad_norm"]) == [p.name for p in WEIGHT_LAYERS]
    loss = entry["loss"]  # the run minimised the paper's loss
    assert loss["total"] == pytest.approx(loss["main"] + 0.3 * (loss["aux1"] + loss["aux2"]), rel=1e-3)
    for value in [*entry["loss"].values(), *entry["grad_norm"].values()]:
        assert value > 0 and value == float(f"{value:.4g}")  # rounded to 4 significant digits


def _folder(root: Path) -> Path:
    for cls, colour in (("light", 220), ("dark", 20)):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 30), (colour, colour - i, colour)).save(root / cls / f"{i}.png")
    return root


def test_image_folder_training_and_its_card_name(tmp_path: Path) -> None:
    cfg = tiny(tmp_path / "run", data=str(_folder(tmp_path / "imgs")), max_steps=1, eval_limit=None)
    result = train(cfg, progress=False)
    assert result["eval_split"] == "train (no val folder) (8 images)"
    ckpt = load_training_checkpoint(result["checkpoint"])
    assert ckpt["classes"] == ["dark", "light"] and ckpt["config"]["num_classes"] == 2
    _, card_path = export_bundled(
        result["checkpoint"], tmp_path / "assets", accuracy=result["accuracy"], command="pytest", wall_time_s=1.0,
        hardware="test", commit="abc",
    )
    assert json.loads(card_path.read_text())["name"] == "GoogLeNet on imgs"


def test_export_bundled_float16(one_step: tuple[TrainConfig, dict], tmp_path: Path) -> None:
    _, result = one_step
    weights, card_path = export_bundled(
        result["checkpoint"], tmp_path, accuracy={**result["accuracy"], "split": "test (4 images)"},
        command="pytest", wall_time_s=1.0, hardware="test", commit="abc",
    )
    state = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    net = googlenet(num_classes=10)
    assert state.keys() == net.state_dict().keys()
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    assert next(net.parameters()).dtype == torch.float32
    card = json.loads(card_path.read_text())
    assert card["name"] == "GoogLeNet on Fashion-MNIST" and card["source"] == "bundled"
    assert card["input_size"] == 32 and card["preprocessing"]["resize"] == 32 and card["num_classes"] == 10
    assert card["accuracy"]["split"] == "test (4 images)" and set(HEADS) <= card["accuracy"].keys()
    assert card["training"]["commit"] == "abc" and card["training"]["epochs"] == 1
    assert card["heads_trained"] == {"main": True, "aux1": True, "aux2": True}


def test_export_samples(fake_fmnist: Path, tmp_path: Path) -> None:
    paths = export_samples(tmp_path)
    assert len(paths) == 20 and len({p.name for p in paths}) == 20
    assert tmp_path / "samples" / "fmnist_t-shirt-top_0.png" in paths
    assert tmp_path / "samples" / "fmnist_ankle-boot_9.png" in paths
    assert all(re.fullmatch(r"fmnist_[a-z-]+_\d+\.png", p.name) for p in paths)
    with Image.open(paths[0]) as im:
        assert im.size == (28, 28) and im.mode == "L"
    assert "Zalando" in (tmp_path / "samples" / "LICENSE.md").read_text()


def test_cli_stop_resume_export(fake_fmnist: Path, tmp_path: Path) -> None:
    common = ["--input-size", "32", "--batch-size", "4", "--num-threads", "1", "--eval-limit", "4", "--no-progress"]
    out = tmp_path / "run"
    assert main([*common, "--max-steps", "2", "--stop-at", "1", "--out-dir", str(out)]) == 0
    assert not (out / "final.json").exists()
    resume = ["--resume", str(out / "last.pt"), "--no-progress", "--num-threads", "1"]
    assert main([*resume, "--export-bundled", str(tmp_path / "assets")]) == 0
    final = json.loads((out / "final.json").read_text())
    assert final["steps"] == 2 and final["train_config"]["command"].startswith("python -m")
    card = json.loads((tmp_path / "assets" / "fashion_mnist_googlenet.json").read_text())
    assert card["training"]["command"] == final["train_config"]["command"]


def test_cli_user_error_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: image folder")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "--batch-size"),
        ({"epochs": 0}, "--epochs"),
        ({"max_steps": 0}, "--max-steps"),
        ({"input_size": 16}, "--input-size 16"),
        ({"batch_size": 1, "input_size": 32}, "--batch-size 2 or more"),
        ({"lr": 0.0}, "--lr"),
        ({"lr": float("nan")}, "--lr"),
        ({"momentum": 0.0}, "--momentum"),
        ({"weight_decay": -1.0}, "--weight-decay"),
        ({"aux_weight": -0.3}, "--aux-weight"),
        ({"branch5x5_kernel": 4}, "--branch5x5-kernel"),
        ({"init": "orthogonal"}, "--init"),
        ({"grad_log_every": -1}, "--grad-log-every"),
        ({"checkpoint_every": -1}, "--checkpoint-every"),
        ({"num_threads": 0}, "--num-threads"),
        ({"eval_limit": 0}, "--eval-limit"),
    ],
)
def test_config_refuses_unusable_settings(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(GNetError, match=re.escape(message)) as caught:
        tiny(tmp_path, **overrides)
    assert not isinstance(caught.value, DatasetError) and str(caught.value).count(". ") == 0
    cfg = tiny(tmp_path)
    for field, value in overrides.items():
        setattr(cfg, field, value)  # reassigned after construction: train() checks again, before any work
    with pytest.raises(GNetError, match=re.escape(message)):
        train(cfg, progress=False)


def test_config_refuses_a_missing_folder_as_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        TrainConfig(data=str(tmp_path / "nowhere"))
    assert TrainConfig(batch_size=1, batch_norm=False, input_size=32).batch_size == 1  # no batch norm: fine


@pytest.mark.parametrize(
    "argv",
    [["--batch-size", "0"], ["--epochs", "0"], ["--max-steps", "0"], ["--input-size", "16"]],
)
def test_cli_bad_settings_exit_2_with_one_sentence(
    fake_fmnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert gnet_main(["train", *argv, "--out-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {argv[0]}") and err.count("\n") == 1
    assert not (tmp_path / "last.pt").exists()


def test_head_losses() -> None:
    g = torch.Generator().manual_seed(0)
    out = HeadLogits(*(torch.randn(4, 10, generator=g) for _ in HEADS))
    y = torch.tensor([0, 1, 2, 3])
    losses = head_losses(out, y)
    assert list(losses) == [*HEADS, "total"]
    assert losses["main"] == pytest.approx(float(torch.nn.functional.cross_entropy(out.main, y)))
    expected = losses["main"] + AUX_WEIGHT * (losses["aux1"] + losses["aux2"])
    assert float(losses["total"]) == pytest.approx(float(expected))
    assert float(head_losses(out, y, aux_weight=1.0)["total"]) == pytest.approx(
        float(losses["main"] + losses["aux1"] + losses["aux2"])
    )
    assert torch.equal(head_losses(out, y, aux=False)["total"], losses["main"])


def test_trim_grad_log_drops_a_half_written_line(tmp_path: Path) -> None:
    log = tmp_path / "grad_log.jsonl"
    lines = [gradlog.format_line(s, {}, {}) for s in (1, 2, 3)]
    log.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:15])  # killed while writing step 3
    gradlog.trim(log, 2)
    assert log.read_text() == lines[0] + "\n" + lines[1] + "\n"
    log.write_text(lines[0] + "\n" + "not json\n" + lines[2] + "\n")
    gradlog.trim(log, 5)
    assert log.read_text() == lines[0] + "\n" + lines[2] + "\n"


def test_a_design_lab_variant_trains_and_reloads_as_that_variant(fake_fmnist: Path, tmp_path: Path) -> None:
    cfg = tiny(tmp_path, max_steps=1, stem="vgg", reductions=False, pool_proj=False, classifier="fc")
    result = train(cfg, progress=False)
    saved = load_training_checkpoint(result["checkpoint"])
    net, meta = load_checkpoint(result["checkpoint"])
    assert (net.config.stem, net.config.reductions, net.config.pool_proj) == ("vgg", False, False)
    assert (net.config.classifier, net.config.fc_input_size) == ("fc", 32)
    assert meta["card"]["design"] == cfg.design()
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved["state_dict"][key].float()), key
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        again, _ = load_checkpoint(result["checkpoint"])
        assert torch.equal(net.eval()(x).main, again.eval()(x).main)
    # The explorer's pages read the paper's layout, so its loader names the variant and says where to go.
    with pytest.raises(CheckpointError, match=r"is a design-lab variant \(vgg stem, no 1x1 reductions"):
        gnet.load(result["checkpoint"], "cpu")
