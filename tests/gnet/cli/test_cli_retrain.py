"""``gnet retrain-heads`` over a folder and a zip, its overlay stacked by ``--labels-overlay``, and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gnet.cli import main
from tests.conftest import write_colour_folder
from tests.gnet.cli.test_cli import checkpoint  # noqa: F401  (a fixture: a 10-class net with classes k0..k9)
from tests.gnet.cli.test_cli_heads import ROOT, _cache  # noqa: F401  (_cache: autouse, a fresh disk cache per test)


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_colour_folder(tmp_path / "mugs", classes=("mug", "pen", "spoon"), per_class=5, size=(40, 40))


def test_retrain_a_zip_then_analyze_in_the_new_classes(checkpoint, folder, tmp_path, capsys):
    archive = tmp_path / "mugs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in folder.rglob("*.png"):
            z.write(p, f"mugs/{p.relative_to(folder).as_posix()}")
    out = tmp_path / "labels.pt"
    assert main(["retrain-heads", "--weights", str(checkpoint), "--data", str(archive), "--out", str(out),
                 "--device", "cpu", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["classes"] == ["mug", "pen", "spoon"] and card["data"]["name"] == "mugs.zip (15 images)"
    assert card["data"]["images_per_class"] == {"mug": 5, "pen": 5, "spoon": 5} and out.exists()
    assert set(card["held_out"]["accuracy"]) == {"main", "aux1", "aux2"}
    image = folder / "pen" / "000.png"
    assert main(["analyze", str(image), "--weights", str(checkpoint), "--labels-overlay", str(out), "--device", "cpu",
                 "--json"]) == 0
    analysis = json.loads(capsys.readouterr().out)
    assert analysis["model"]["classes"] == ["mug", "pen", "spoon"]
    assert {p["label"] for head in analysis["heads"].values() for p in head} <= {"mug", "pen", "spoon"}


def test_text_output_names_the_source_to_stack(checkpoint, folder, tmp_path, capsys):
    out = tmp_path / "labels.pt"
    assert main(["retrain-heads", "--weights", str(checkpoint), "--data", str(folder), "--out", str(out),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "held-out accuracy (3 images)" in text and f"{checkpoint}+labels={out}" in text


def test_a_hostile_zip_exits_2_and_writes_nothing(checkpoint, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/x.png", b"x")
        z.writestr("../../escape.png", b"x")
    out = tmp_path / "labels.pt"
    proc = subprocess.run([sys.executable, "-m", "gnet", "retrain-heads", "--weights", str(checkpoint), "--data",
                           str(archive), "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "points outside its folder" in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists() and not (tmp_path.parent / "escape.png").exists()


def test_one_class_exits_2_with_one_sentence(checkpoint, tmp_path, capsys):
    one = write_colour_folder(tmp_path / "one", classes=("mug",), per_class=3, size=(32, 32))
    assert main(["retrain-heads", "--weights", str(checkpoint), "--data", str(one), "--out", str(tmp_path / "l.pt")]) == 2
    err = capsys.readouterr().err
    assert "a classifier needs at least two" in err and err.count("\n") == 1 and not (tmp_path / "l.pt").exists()
