"""``gnet design``: the designs beside the paper's, and its user errors."""

from __future__ import annotations

import json

from gnet.cli import main
from gnet.net.design import CHOICES, Design, cost_of


def test_without_options_every_one_choice_change(capsys):
    assert main(["design", "--input-size", "64", "--no-latency", "--no-memory"]) == 0
    out = capsys.readouterr().out
    for d in CHOICES:
        assert f"\n{d.name:<28}" in out
    assert "as claimed" in out


def test_one_design_as_json_with_memory_and_timing(capsys):
    argv = ["design", "--stem", "vgg", "--no-reductions", "--input-size", "64", "--num-classes", "10",
            "--repeats", "1", "--batch-sizes", "2", "--device", "cpu", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    name = Design(stem="vgg", reductions=False).name
    assert [r["design"] for r in out["table"]] == ["paper", name]
    assert out["table"][1]["macs"] == cost_of(Design(stem="vgg", reductions=False), input_size=64, num_classes=10).macs
    assert out["table"][1]["train_b2_s"] > 0 and out["table"][0]["forward_b2_ratio"] == 1.0
    assert out["table"][1]["activation_bytes"] > 0


def test_csv(capsys):
    assert main(["design", "--classifier", "fc", "--input-size", "64", "--no-latency", "--no-memory", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("design,") and len(lines) == 3


def test_too_small_is_one_sentence_and_exit_2(capsys):
    assert main(["design", "--stem", "vgg", "--input-size", "16", "--no-latency"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs at least 32 pixels" in err
