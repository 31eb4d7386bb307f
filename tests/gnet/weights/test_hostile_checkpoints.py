"""Crafted checkpoints: each gets one sentence naming what is wrong, exit 2, no traceback, nothing allocated.

Every file here is built in the test; the expected sentences are the ones gnet writes for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import gnet
from gnet.errors import CheckpointError
from gnet.net.model import googlenet

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "assets" / "samples" / "fmnist_ankle-boot_0.png"
CARD = {"classes": [f"k{i}" for i in range(10)], "input_size": 64, "preprocessing": {"mean": [0.3], "std": [0.35]}}


@pytest.fixture(scope="module")
def net():
    return googlenet(num_classes=10, seed=0)


def _save(path: Path, obj, **kwargs) -> Path:
    torch.save(obj, path, **kwargs)
    return path


def _crafted(tmp: Path, net) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment of the one sentence it must get)."""
    sd = net.state_dict()
    config = net.config.to_dict()
    nan = dict(sd)
    nan["inception4b.branch1.conv.weight"] = sd["inception4b.branch1.conv.weight"].clone().fill_(float("nan"))
    inf = dict(sd)
    inf["fc.bias"] = torch.full_like(sd["fc.bias"], float("inf"))
    (tmp / "random.pt").write_bytes(os.urandom(4096))
    (tmp / "empty.pt").write_bytes(b"")
    return {
        "huge classes in config": (
            _save(tmp / "huge_classes.pt", {"config": {**config, "num_classes": 10**15}, "state_dict": sd}),
            "has a model config that cannot be used: num_classes 1000000000000000 (an integer from 1 to 100,000)",
        ),
        "config disagrees with fc": (
            _save(tmp / "config_fc.pt", {"config": {**config, "num_classes": 7}, "state_dict": sd}),
            "num_classes 7 while the file's fc layer has 10 rows",
        ),
        "unknown stem in config": (
            _save(tmp / "stem.pt", {"config": {**config, "stem": "huge"}, "state_dict": sd}),
            "has a model config that cannot be used: stem 'huge' (one of paper, 3x3, vgg)",
        ),
        "fc classifier without its size": (
            _save(tmp / "fc_size.pt", {"config": {**config, "classifier": "fc"}, "state_dict": sd}),
            "fc_input_size None with classifier 'fc' (an integer from 32 to 512 with \"fc\", else none)",
        ),
        "huge input size in card": (
            _save(tmp / "huge_input.pt", {"config": config, "state_dict": sd, "card": {**CARD, "input_size": 10**6}}),
            "has a model card that does not fit its weights: input_size 1000000 (an integer from 32 to 512 is needed)",
        ),
        "card with a zero std": (
            _save(tmp / "zero_std.pt", {"config": config, "state_dict": sd,
                                         "card": {**CARD, "preprocessing": {"mean": [0.3], "std": [0.0]}}}),
            "preprocessing std [0.0] (finite numbers, above 0)",
        ),
        "NaN weights": (_save(tmp / "nan.pt", nan), "has non-finite values (NaN or Inf) in inception4b.branch1.conv.weight"),
        "Inf weights": (_save(tmp / "inf.pt", {"config": config, "state_dict": inf}), "non-finite values (NaN or Inf) in fc.bias"),
        "random bytes": (
            tmp / "random.pt",
            "is not a PyTorch checkpoint (neither the zip archive nor the pickle that torch.save writes)",
        ),
        "empty file": (tmp / "empty.pt", "is not a PyTorch checkpoint (an empty file)"),
        "resnet-18": (
            _save(tmp / "resnet18.pt", torchvision.models.resnet18().state_dict()),
            "is not a GoogLeNet checkpoint: its first keys are conv1.weight, bn1.weight, bn1.bias, bn1.running_mean",
        ),
        "pickle protocol 4": (
            _save(tmp / "protocol4.pt", sd, pickle_protocol=4),
            "was saved with pickle protocol 4 or later, which torch's safe loader cannot read",
        ),
        "code in the pickle": (_save(tmp / "code.pt", {"state_dict": sd, "hook": print}), "contains pickled Python objects"),
    }


def test_each_crafted_checkpoint_gets_its_sentence(tmp_path, net):
    for what, (path, fragment) in _crafted(tmp_path, net).items():
        with pytest.raises(CheckpointError) as caught:
            gnet.load(str(path), "cpu")
        message = str(caught.value)
        assert fragment in message, (what, message)
        assert "\n" not in message and message.startswith(repr(str(path))), what


def test_an_uploaded_file_is_named_as_the_user_named_it(tmp_path, net):
    path = tmp_path / "upload-e3b0c44298fc1c14.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"^'my weights\.pt' is not a PyTorch checkpoint"):
        gnet.load(str(path), "cpu", label="my weights.pt")


def test_cli_prints_only_the_sentence_and_exits_2(tmp_path, net):
    for what, (path, fragment) in _crafted(tmp_path, net).items():
        res = subprocess.run(
            [sys.executable, "-m", "gnet", "analyze", str(SAMPLE), "--weights", str(path), "--device", "cpu"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        assert res.returncode == 2, (what, res.stderr)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and fragment in res.stderr, (what, res.stderr)
        assert "Traceback" not in res.stderr and "Warning" not in res.stderr, what


def _peak_rss_kb(path: Path) -> tuple[str, int]:
    """(outcome, peak RSS in KB) of a fresh process that loads ``path``."""
    code = (
        "import resource, gnet\n"
        "try:\n    gnet.load(%r, 'cpu')\n    print('loaded')\nexcept gnet.CheckpointError as e:\n    print('refused', e)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n" % str(path)
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    outcome, peak_kb = res.stdout.strip().splitlines()
    return outcome, int(peak_kb)


def test_huge_cards_are_refused_without_allocating_them(tmp_path, net):
    """Peak RSS stays within 100 MB of loading the same, honest checkpoint: nothing the card asks for is allocated."""
    sd, config = net.state_dict(), net.config.to_dict()
    honest = _save(tmp_path / "honest.pt", {"config": config, "state_dict": sd, "card": CARD})
    classes = _save(tmp_path / "classes.pt", {"config": {**config, "num_classes": 10**15}, "state_dict": sd})
    size = _save(tmp_path / "size.pt", {"config": config, "state_dict": sd, "card": {**CARD, "input_size": 10**6}})
    outcome, baseline = _peak_rss_kb(honest)
    assert outcome == "loaded"
    for path, fragment in ((classes, "num_classes 1000000000000000"), (size, "input_size 1000000")):
        outcome, peak = _peak_rss_kb(path)
        assert outcome.startswith("refused") and fragment in outcome
        assert peak < baseline + 100_000, f"{path.name}: peak RSS {peak / 1024:.0f} MB vs {baseline / 1024:.0f} MB"
