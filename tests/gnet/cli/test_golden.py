"""The CLI's JSON for analyze, flops and gradients on a fixed input, against files kept in tests/gnet/golden.

The golden files were written by the code before the one-owner-per-concept restructuring
(commit e78dc28) and have not been regenerated since: the restructuring changed no number.
Its one intended change is the gradient layers' names, which follow gnet.net.layers' single
scheme (``conv1`` became ``conv1.conv``, ``inception3a.3x3`` became ``inception3a.3x3.conv``);
gradients.json holds the new names with the old values. Timing fields and the thread count
in ``device`` are left out; floats compare with a tolerance that a faster but equivalent
computation keeps (float32 reductions instead of float64, another summation order). The one
exception is the heads' KL divergence to main, now computed in float64: the golden files hold
float32's value, whose absolute error (1.2e-7 on aux1's 2.3e-4) is beyond a relative tolerance,
so it compares within an absolute 1e-6.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gnet.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
ROOT = Path(__file__).resolve().parents[3]
SAMPLE = "assets/samples/fmnist_ankle-boot_0.png"  # relative to ROOT, as the golden files name it
DESIGN_DEFAULTS = {"stem": "paper", "reductions": True, "pool_proj": True, "classifier": "gap", "fc_input_size": None}


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    monkeypatch.chdir(ROOT)


def _run(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _assert_same(got, want, where: str = "", rel: float = 1e-4, floor: float = 0.0) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _assert_same(got[key], want[key], f"{where}.{key}", rel, floor)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{where}[{i}]", rel, floor)
    elif isinstance(want, float) and not isinstance(want, bool):
        absolute = max(floor, 1e-6 if where.endswith(".kl_to_main") else 1e-9 * max(1.0, abs(want)))
        assert math.isclose(got, want, rel_tol=rel, abs_tol=absolute), (where, got, want)
    else:
        assert got == want, (where, got, want)


def test_analyze_json_is_unchanged(capsys):
    got = _run(capsys, ["analyze", SAMPLE, "--weights", "bundled", "--device", "cpu", "--json"])
    got.pop("timing_ms")
    assert got.pop("in_domain")["in_domain"] is True  # added after the golden file (issue 9); see test_indomain.py
    assert got.pop("device").startswith("cpu")
    want = json.loads((GOLDEN / "analyze.json").read_text())
    want.pop("device")
    _assert_same(got, want, rel=1e-5)


def test_flops_json_is_unchanged(capsys):
    got = _run(capsys, ["flops", "--weights", "bundled", "--json"])
    assert got == json.loads((GOLDEN / "flops.json").read_text())


def test_gradients_json_is_unchanged(capsys):
    got = _run(capsys, ["gradients", SAMPLE, "--weights", "bundled", "--json"])
    # The design lab's options were added to the config after the golden file (issue 23); the
    # bundled net is the paper's design, so each holds its default.
    design = {key: got["variant"]["config"].pop(key) for key in DESIGN_DEFAULTS}
    assert design == DESIGN_DEFAULTS
    want = json.loads((GOLDEN / "gradients.json").read_text())
    # A norm a million times below the largest one (inception5a.pool_proj.proj's main, 6.4e-7 against
    # 3.0) is float32 rounding of near-zero gradients: it moved by 0.3% when the checkpoint's weights
    # came to be assigned rather than copied into a freshly initialised net.
    largest = max(row[loss] for q in ("layers", "activation") for row in want[q] for loss in ("main", "aux1", "aux2"))
    _assert_same(got, want, rel=1e-4, floor=1e-6 * largest)


def test_the_comparison_tolerates_only_small_differences():
    """The helper can fail: a changed number, a renamed key or a missing row are caught."""
    want = json.loads((GOLDEN / "gradients.json").read_text())
    changed = json.loads(json.dumps(want))
    changed["layers"][0]["main"] *= 1.001
    with pytest.raises(AssertionError):
        _assert_same(changed, want)
    changed = json.loads(json.dumps(want))
    changed["layers"][0]["name"] = "conv1"
    with pytest.raises(AssertionError):
        _assert_same(changed, want)
    with pytest.raises(AssertionError):
        _assert_same({**want, "layers": want["layers"][:-1]}, want)
