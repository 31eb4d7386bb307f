"""The channel commands: ablate, importance, visualize, examples; one-sentence errors and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gnet.cli import main
from gnet.data.fashion_mnist import FASHION_MNIST_CLASSES
from gnet.net.model import googlenet
from tests.conftest import use_fake_fashion_mnist


@pytest.fixture
def checkpoint(tmp_path):
    """A 10-class checkpoint with Fashion-MNIST's class names and a model card, at 64 px."""
    net = googlenet(num_classes=10, init="kaiming", seed=0)
    card = {
        "name": "channels test net",
        "classes": list(FASHION_MNIST_CLASSES),
        "input_size": 64,
        "preprocessing": {"mean": [0.3], "std": [0.35]},
        "heads_trained": {"main": True, "aux1": True, "aux2": True},
    }
    path = tmp_path / "net.pt"
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card}, path)
    return str(path)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def fake_fmnist(tmp_path, monkeypatch):
    return use_fake_fashion_mnist(tmp_path, monkeypatch, n_test=6)


def test_ablate_json_compares_with_the_intact_net(checkpoint, image, capsys):
    argv = ["ablate", image, "--off", "inception4c.5x5", "--off", "inception4d.pool_proj:3", "--weights", checkpoint,
            "--device", "cpu", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["knocked_out"]["knockouts"] == ["inception4c.5x5", "inception4d.pool_proj:3"]
    assert out["intact"]["knockouts"] == []
    assert out["change"]["aux1"]["total_variation"] == 0.0  # aux1 reads nothing after inception4a
    assert len(out["knocked_out"]["heads"]["main"]) == 5


def test_ablate_text_allows_every_branch_of_a_module(checkpoint, image, capsys):
    offs = [a for b in ("1x1", "3x3", "5x5", "pool_proj") for a in ("--off", f"inception3a.{b}")]
    assert main(["ablate", image, *offs, "--weights", checkpoint, "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "knocked out: inception3a.1x1, inception3a.3x3, inception3a.5x5, inception3a.pool_proj" in text
    assert "aux1:" in text and "intact" in text


def test_visualize_writes_a_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "vis.png"
    argv = ["visualize", "aux1:Sneaker", "--out", str(out), "--steps", "2", "--weights", checkpoint, "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["target"] == "aux1:Sneaker" and len(result["trace"]) == 2
    assert Image.open(out).size == (256, 256)  # 64 px, 4x


def test_examples_and_importance_over_the_fashion_mnist_test_set(checkpoint, fake_fmnist, capsys):
    assert main(["examples", "inception4e.3x3:7", "--weights", checkpoint, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["channel"] == "inception4e.3x3:7" and out["images"] == 6
    assert len(out["by_mean"]) == 6 and len(out["by_max"]) == 6  # k = 9 but only 6 images
    assert sorted(e["index"] for e in out["by_mean"]) == list(range(6))
    assert main(["importance", "--images", "4", "--weights", checkpoint, "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "module,branch,head,accuracy,intact_accuracy,drop" and len(lines) == 1 + 36 * 3


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ablate", "IMAGE", "--off", "inception4c.7x7"], "choose one of 1x1, 3x3, 5x5, pool_proj"),
        (["ablate", "IMAGE", "--off", "inception4c.5x5:99"], "channels 0 to 63"),
        (["ablate", "IMAGE", "--off", "inception9z.5x5"], "choose one of inception3a"),
        (["visualize", "main:Giraffe", "--out", "x.png"], "not a class of these weights: choose one of T-shirt/top"),
        (["visualize", "aux3:Sneaker", "--out", "x.png"], "HEAD one of main, aux1, aux2"),
        (["visualize", "main:Sneaker", "--out", "x.png", "--steps", "5000"], "at most 4096"),
        (["examples", "inception4c.5x5"], "whole branch"),
        (["examples", "inception4c.5x5:64"], "channels 0 to 63"),
    ],
)
def test_bad_targets_exit_2_with_one_sentence(argv, fragment, checkpoint, image, capsys):
    argv = [image if a == "IMAGE" else a for a in argv]
    assert main([*argv, "--weights", checkpoint]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and err.startswith("error: ") and len(err.splitlines()) == 1


def test_no_dataset_is_said_clearly(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    assert main(["examples", "inception3a.1x1:0", "--weights", checkpoint]) == 2
    assert "Fashion-MNIST not found" in capsys.readouterr().err
    assert main(["importance", "--data", str(tmp_path / "missing"), "--weights", checkpoint]) == 2
    assert "does not exist" in capsys.readouterr().err
