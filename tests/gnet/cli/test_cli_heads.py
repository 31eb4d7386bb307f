"""``gnet heads`` (table, JSON, CSV, early exits, bad folders) and the in-domain field of ``gnet analyze --json``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gnet
from gnet.cli import main
from tests.gnet.cli.test_cli import checkpoint  # noqa: F401  (a fixture: a 10-class net with classes k0..k9)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "set"
    for c in ("k1", "k3", "k7"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (36, 36), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_heads_json_over_a_folder(checkpoint, folder, capsys):
    out = _json(capsys, ["heads", "--weights", str(checkpoint), "--data", str(folder), "--device", "cpu", "--json"])
    assert out["images"] == 12 and out["labelled"] == 12 and out["origin"] == "computed"
    comparison = out["comparison"]
    assert [row["head"] for row in comparison["table"]] == ["main", "aux1", "aux2"]
    for head, stats in comparison["heads"].items():
        assert sum(map(sum, stats["confusion"])) == 12
        assert len(stats["reliability"]["count"]) == 15
    exits = out["early_exits"]
    assert exits["main_only"]["share"]["main"] == 1.0 and "BranchyNet" in exits["idea"]
    assert exits["aux2_only"]["share"]["aux2"] == 1.0
    assert exits["aux1_only"]["mean_macs"] < exits["costs"]["aux2_only"] == exits["aux2_only"]["mean_macs"]
    assert all(d["top"]["main"][0]["index"] != d["top"][d["aux"]][0]["index"] for d in out["disagreements"])
    again = _json(capsys, ["heads", "--weights", str(checkpoint), "--data", str(folder), "--device", "cpu", "--json"])
    assert again["origin"] == "disk cache" and again["comparison"]["table"] == comparison["table"]


def test_heads_text_csv_and_exits(checkpoint, folder, capsys):
    base = ["heads", "--weights", str(checkpoint), "--data", str(folder), "--device", "cpu"]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "ECE" in text and "aux2" in text
    assert main([*base, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["head"] for r in rows] == ["main", "aux1", "aux2"] and "ece" in rows[0]
    assert main([*base, "--exits"]) == 0
    text = capsys.readouterr().out
    assert "BranchyNet" in text and "discards the auxiliary heads" in text and "main only (t > 1)" in text
    assert main([*base, "--exits", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["threshold"] == "main only (t > 1)" and float(rows[0]["exit_main"]) == 1.0
    assert rows[2]["threshold"] == "aux2 only (no aux1)" and float(rows[2]["exit_aux2"]) == 1.0


def test_heads_on_the_bundled_weights_uses_the_shipped_logits(capsys):
    out = _json(capsys, ["heads", "--weights", "bundled", "--device", "cpu", "--json"])
    assert out["origin"] == "shipped" and out["images"] == 10_000
    card = gnet.load("bundled", "cpu").card
    for row in out["comparison"]["table"]:
        # The card measured the float16 weights in float32; the shipped logits are float16.
        assert row["top1"] == pytest.approx(card.accuracy[row["head"]], abs=5e-4), row


def _bad_folders(root: Path) -> dict[str, tuple[Path, str]]:
    empty = root / "empty"
    empty.mkdir()
    flat = root / "flat"
    flat.mkdir()
    Image.new("RGB", (30, 30)).save(flat / "a.png")
    unknown = root / "unknown"
    (unknown / "giraffe").mkdir(parents=True)
    Image.new("RGB", (30, 30)).save(unknown / "giraffe" / "a.png")
    no_images = root / "no_images"
    (no_images / "k1").mkdir(parents=True)
    broken = root / "broken"
    (broken / "k2").mkdir(parents=True)
    Image.new("RGB", (30, 30)).save(broken / "k2" / "good.png")
    (broken / "k2" / "bad.png").write_bytes(b"\x89PNG not really")
    return {
        "empty": (empty, "no class subfolders"),
        "flat": (flat, "no class subfolders"),
        "unknown": (unknown, "giraffe"),
        "no_images": (no_images, "holds no images"),
        "broken": (broken, "bad.png"),
        "missing": (root / "nowhere", "does not exist"),
    }


@pytest.mark.parametrize("case", ["empty", "flat", "unknown", "no_images", "broken", "missing"])
def test_bad_folders_exit_2_with_one_sentence(case, checkpoint, tmp_path, capsys):
    path, fragment = _bad_folders(tmp_path)[case]
    assert main(["heads", "--weights", str(checkpoint), "--data", str(path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_broken_folder_via_subprocess_has_no_traceback(checkpoint, tmp_path):
    path, _ = _bad_folders(tmp_path)["broken"]
    proc = subprocess.run([sys.executable, "-m", "gnet", "heads", "--weights", str(checkpoint), "--data", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "bad.png" in proc.stderr


def test_analyze_json_has_an_in_domain_field(checkpoint, tmp_path, capsys):
    image = ROOT / "assets" / "samples" / "photos" / "chelsea.jpg"
    out = _json(capsys, ["analyze", str(image), "--weights", str(checkpoint), "--device", "cpu", "--json"])
    assert out["in_domain"]["score"] is None and out["in_domain"]["in_domain"] is None
    assert "No in-domain score" in out["in_domain"]["note"]
    out = _json(capsys, ["analyze", str(image), "--weights", "bundled", "--device", "cpu", "--json"])
    verdict = out["in_domain"]
    assert verdict["in_domain"] is False and verdict["percentile"] > 99 and verdict["score"] > verdict["threshold"]
    assert max(p["prob"] for p in out["heads"]["main"]) > 0.9  # the softmax alone is sure of a garment
    sample = ROOT / "assets" / "samples" / "fmnist_bag_18.png"
    assert _json(capsys, ["analyze", str(sample), "--weights", "bundled", "--device", "cpu", "--json"])["in_domain"][
        "in_domain"
    ] is True


def test_probes_over_a_folder_in_json_csv_and_text(checkpoint, folder, capsys):
    base = ["probes", "--weights", str(checkpoint), "--data", str(folder), "--device", "cpu"]
    out = _json(capsys, [*base, "--json"])
    assert [p["point"] for p in out["probes"]][:2] == ["conv1", "maxpool1"] and len(out["probes"]) == 14
    assert out["probes"][0]["train_images"] + out["probes"][0]["test_images"] == 12
    assert set(out["heads"]) == {"main", "aux1", "aux2"} and out["heads"]["aux1"]["point"] == "inception4a"
    assert main([*base, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["point"] for r in rows] == [p["point"] for p in out["probes"]]
    assert float(rows[-1]["accuracy"]) == pytest.approx(out["probes"][-1]["accuracy"], abs=1e-4)
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "inception4d" in text and f"aux2 {out['heads']['aux2']['accuracy']:.2%}" in text


def test_probes_of_the_bundled_weights_are_read_from_the_shipped_curve(capsys):
    out = _json(capsys, ["probes", "--json"])
    assert out["probes"][-1]["point"] == "inception5b" and out["probes"][-1]["train_images"] == 60_000


def test_probes_on_a_class_with_one_image_exit_2_with_one_sentence(checkpoint, tmp_path, capsys):
    root = tmp_path / "one"
    for c, n in (("k1", 3), ("k2", 1)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (30, 30), (40 * i, 0, 0)).save(root / c / f"{i}.png")
    assert main(["probes", "--weights", str(checkpoint), "--data", str(root), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'k2'" in err and err.count("\n") == 1, err
