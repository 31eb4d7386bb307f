import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gnet.cli import main
from gnet.net.model import googlenet

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A 10-class checkpoint in the trainer's format, with a model card."""
    net = googlenet(num_classes=10, init="kaiming", seed=0)
    card = {
        "name": "cli test net",
        "classes": [f"k{i}" for i in range(10)],
        "input_size": 64,
        "preprocessing": {"mean": [0.3], "std": [0.35]},
        "heads_trained": {"main": True, "aux1": True, "aux2": True},
    }
    path = tmp_path / "net.pt"
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card}, path)
    return path


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(path)
    return path


def test_analyze_json_schema(checkpoint, image, capsys):
    assert main(["analyze", str(image), "--weights", str(checkpoint), "--device", "cpu", "--top", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"].startswith("cpu")
    assert out["model"]["name"] == "cli test net"
    for head in ("main", "aux1", "aux2"):
        preds = out["heads"][head]
        assert len(preds) == 3
        assert all(isinstance(p["index"], int) and p["label"].startswith("k") for p in preds)
        assert sum(p["prob"] for p in preds) <= 1.0 + 1e-6
    assert len(out["modules"]) == 9
    branches = out["modules"]["inception3a"]["branches"]
    assert set(branches) == {"1x1", "3x3", "5x5", "pool_proj"}
    assert branches["1x1"]["channels"] == 64
    assert sum(b["energy_share"] for b in branches.values()) == pytest.approx(1.0)
    assert out["timing_ms"]["forward"] > 0


def test_analyze_text(checkpoint, image, capsys):
    assert main(["analyze", str(image), "--weights", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "inception5b" in out and "aux2" in out


def test_flops_json_and_csv(capsys):
    assert main(["flops", "--weights", "random", "--input-size", "96", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input_size"] == 96
    assert out["total"]["flops"] == 2 * out["total"]["macs"]
    assert sum(r["flops"] for r in out["rows"]) == out["total"]["flops"]
    assert {"name", "kind", "module", "branch", "out_shape", "params", "macs", "flops"} <= set(out["rows"][0])
    assert any(r["name"] == "inception3a" for r in out["paper"])
    assert main(["flops", "--weights", "random", "--input-size", "64", "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("name,kind,module,branch,out_shape")
    assert len(lines) == len(out["rows"]) + 1


def test_info(capsys):
    assert main(["info", "--weights", "random", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["untrained_heads"] == ["main", "aux1", "aux2"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["analyze", "missing.png", "--weights", "random"], "does not exist"),
        (["info", "--weights", "no/such/file.pt"], "does not exist"),
        (["info", "--weights", "bogus"], "Unknown weights"),
        (["analyze", "x.png", "--device", "tpu"], "device"),
        (["flops", "--input-size", "8", "--weights", "random"], "too small"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_bad_top_is_a_usage_error(top, capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", "img.png", "--top", top])
    assert e.value.code == 2 and "--top" in capsys.readouterr().err


def test_a_reader_that_goes_away_is_not_an_error(checkpoint):
    """``gnet ... | head``: the pipe's reader closes it before gnet has written; gnet stops quietly."""
    proc = subprocess.Popen([sys.executable, "-m", "gnet", "info", "--weights", str(checkpoint)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # gnet takes a second to import: it writes after this
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1  # as Python's own exit on EPIPE
    assert err == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_a_broken_pipe_elsewhere_is_not_hidden(checkpoint, monkeypatch):
    import gnet.cli.info

    def broken(_args):
        raise BrokenPipeError(32, "a DataLoader worker's pipe")

    monkeypatch.setattr(gnet.cli.info, "run", broken)
    with pytest.raises(BrokenPipeError, match="DataLoader"):
        main(["info", "--weights", str(checkpoint)])


def test_broken_image_via_subprocess(tmp_path, checkpoint):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    proc = subprocess.run(
        [sys.executable, "-m", "gnet", "analyze", str(bad), "--weights", str(checkpoint)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    assert proc.stdout == ""
