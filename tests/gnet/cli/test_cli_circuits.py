"""``gnet circuit`` and ``gnet families``: text and JSON, the contributions' completeness printed, bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gnet.cli import main
from gnet.net.model import googlenet
from tests.conftest import use_fake_fashion_mnist


@pytest.fixture
def checkpoint(tmp_path):
    net = googlenet(num_classes=10, init="kaiming", seed=0)
    card = {"name": "circuits test net", "classes": [f"c{i}" for i in range(10)], "input_size": 64,
            "preprocessing": {"mean": [0.3], "std": [0.35]}}
    path = tmp_path / "net.pt"
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card}, path)
    return str(path)


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_circuit_text_names_both_sides_and_the_approximation(checkpoint, capsys):
    code, out, _ = _run(capsys, "circuit", "inception4a.3x3:12", "--k", "3", "--weights", checkpoint)
    assert code == 0
    assert "inception4a.3x3:12 is built from, in inception3b" in out and "approximation: ReLUs taken as identity" in out
    assert out.count("inception3b.") == 6  # three each way
    code, out, _ = _run(capsys, "circuit", "inception4a.3x3:12", "--down", "--k", "2", "--weights", checkpoint)
    assert code == 0 and "feeds, in inception4b" in out and out.count("inception4b.") == 4


def test_circuit_json_by_either_method_ranks_the_same_channels(checkpoint, capsys):
    runs = []
    for method in ("weights", "gradient"):
        code, out, _ = _run(capsys, "circuit", "inception4b.5x5:3", "--k", "4", "--method", method,
                            "--weights", checkpoint, "--json")
        assert code == 0
        runs.append(json.loads(out))
    assert [c["channel"] for c in runs[0]["excite"]] == [c["channel"] for c in runs[1]["excite"]]
    assert runs[0]["method"] == "weights" and np.array(runs[0]["excite"][0]["kernel"]).shape == (3, 3)


def test_circuit_on_an_image_prints_what_the_contributions_add_up_to(checkpoint, tmp_path, capsys):
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    code, out, _ = _run(capsys, "circuit", "inception3b.1x1:5", "--image", str(path), "--weights", checkpoint,
                        "--json")
    assert code == 0
    data = json.loads(out)["data"]
    assert data["images"] == 1 and data["sum_of_contributions"] == pytest.approx(
        data["activation"] - data["baseline"], abs=0.02 * abs(data["activation"] - data["baseline"]) + 1e-4)


def test_circuit_over_the_dataset_uses_the_evaluation_set(checkpoint, tmp_path, monkeypatch, capsys):
    use_fake_fashion_mnist(tmp_path, monkeypatch, n_test=6)
    code, out, _ = _run(capsys, "circuit", "inception3b.1x1:5", "--dataset", "--images", "4", "--k", "2",
                        "--weights", checkpoint)
    assert code == 0 and "contributions sum to" in out and "integration error" in out


def test_families_text_and_json(checkpoint, tmp_path, monkeypatch, capsys):
    use_fake_fashion_mnist(tmp_path, monkeypatch, n_test=12)
    code, out, _ = _run(capsys, "families", "inception3b", "--families", "3", "--weights", checkpoint)
    assert code == 0 and "24 images of the 24 sample images" in out and "Bonferroni" in out  # c0..c9: the samples
    code, out, _ = _run(capsys, "families", "inception3b", "--families", "3", "--weights", checkpoint, "--json")
    data = json.loads(out)
    assert code == 0 and len(data["families"]) <= 3 and sum(len(m) for m in data["members"].values()) == 480


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["circuit", "inception3a.1x1:0"], "circuits start at inception3b"),
        (["circuit", "inception5b.1x1:0", "--down"], "shown up to inception5a"),
        (["circuit", "inception4a.3x3:12", "--k", "0"], "choose 1 to 480 connections"),
        (["circuit", "inception4a.3x3:999"], "channels 0 to 207"),
        (["circuit", "inception4a.3x3:1", "--down", "--dataset"], "leave out --down"),
        (["families", "inception3b", "--families", "500"], "choose 2 to 120"),
        (["families", "stem"], "choose one of inception3a"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(checkpoint, capsys, argv, fragment):
    code, out, err = _run(capsys, *argv, "--weights", checkpoint)
    assert code == 2
    assert fragment in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1
