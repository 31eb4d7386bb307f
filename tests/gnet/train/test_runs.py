"""gnet.train.runs: the recorded runs in assets/runs read into tidy tables, and broken files named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gnet.errors import DatasetError
from gnet.inspect.gradients import LOSSES
from gnet.net.layers import WEIGHT_LAYERS
from gnet.net.model import INIT_SCHEMES
from gnet.train.gradlog import read_grad_log
from gnet.train.runs import RUNS_DIR, load_runs


@pytest.fixture(scope="module")
def runs():
    return load_runs()


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A writable copy of assets/runs to break."""
    return Path(shutil.copytree(RUNS_DIR, tmp_path / "runs"))


def test_real_runs_are_tidy_and_complete(runs):
    index = json.loads((RUNS_DIR / "index.json").read_text())["runs"]
    assert list(runs.index["name"]) == [r["name"] for r in index]
    assert {"accuracy_main", "accuracy_aux1", "accuracy_aux2", "command"} <= set(runs.index.columns)
    layers = [p.name for p in WEIGHT_LAYERS]
    for entry in index:
        norms = runs.grad_norms[runs.grad_norms["run"] == entry["name"]]
        steps = sorted(norms["step"].unique())
        assert steps == list(range(entry["grad_log_every"], entry["steps"] + 1, entry["grad_log_every"]))
        first = norms[norms["step"] == steps[0]]
        assert list(first["layer"]) == layers  # forward order, as gnet.train.loop logs it
        assert list(first["depth"]) == list(range(len(layers)))
        losses = runs.losses[(runs.losses["run"] == entry["name"]) & (runs.losses["step"] == steps[0])]
        assert list(losses["head"]) == ["main", "aux1", "aux2", "total"]
    assert (runs.grad_norms["norm"] >= 0).all()
    assert set(runs.grad_norms["kind"]) == {"stem", "inception", "aux", "classifier"}


def test_comparison_covers_every_variant_init_and_loss(runs):
    frame = runs.comparison
    assert set(frame["variant"]) == {"no_bn", "bn"}
    assert set(frame["init"]) == set(INIT_SCHEMES)
    assert set(frame["loss"]) == set(LOSSES)
    assert set(frame["quantity"]) == {"weight", "activation"}
    sizes = frame.groupby(["variant", "init", "loss", "quantity"]).size()
    assert set(sizes) == {len(WEIGHT_LAYERS)}  # every combination has every layer


def test_a_corrupt_log_line_names_the_file_and_line(copied: Path):
    log = copied / "bn_aux.jsonl"
    lines = log.read_text().splitlines()
    lines[2] = lines[2][:40]  # a truncated record
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"bn_aux\.jsonl, line 3"):
        load_runs(copied)


def test_another_format_version_is_refused(copied: Path):
    index = copied / "index.json"
    data = json.loads(index.read_text())
    index.write_text(json.dumps({**data, "v": 1}))
    with pytest.raises(DatasetError, match=r"index\.json has format version 1"):
        load_runs(copied)
    log = copied / "nobn_aux.jsonl"
    log.write_text(log.read_text().replace('"v": 2', '"v": 7', 1))
    with pytest.raises(DatasetError, match=r"nobn_aux\.jsonl, line 1, has format version 7"):
        read_grad_log(log)


@pytest.mark.parametrize("missing", ["index.json", "nobn_noaux.jsonl", "compare_variants.csv"])
def test_a_missing_file_is_named(copied: Path, missing: str):
    (copied / missing).unlink()
    with pytest.raises(DatasetError, match=missing.replace(".", r"\.")):
        load_runs(copied)


def test_a_comparison_without_its_columns_is_refused(copied: Path):
    (copied / "compare_variants.csv").write_text("variant,init\nbn,xavier\n")
    with pytest.raises(DatasetError, match="compare_variants.csv has no column 'batch_norm'"):
        load_runs(copied)
