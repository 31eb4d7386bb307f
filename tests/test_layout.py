"""The import contracts in pyproject.toml: kept by the tree, and each one broken by a deliberate violation.

Each violation is one line appended to a module of a copy of gnet/ and dashboard/; ``lint-imports``
then runs on the copy with that one contract, and must fail, naming the contract.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# contract id -> (module file to append to, the line that breaks the contract)
VIOLATIONS = {
    "gnet-layers": ("gnet/net/layers.py", "import gnet.weights.loader"),  # net is below weights
    "dashboard-layers": ("dashboard/figures/charts.py", "import dashboard.cache.bounds"),  # figures are below cache
    "gnet-acyclic": ("gnet/net/layers.py", "import gnet.net.model"),  # model imports layers already
    "gnet-library": ("gnet/errors.py", "import streamlit"),
    "figures-pure": ("dashboard/figures/tables.py", "import streamlit"),
    "views-no-torch": ("dashboard/views/cost.py", "import torch"),
}


def _contracts() -> dict[str, str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


def _lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess:
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo", *(f"--contract={c}" for c in contracts)]
    # lint-imports puts its working directory first on the path, so the copy is analysed, not the install
    return subprocess.run(args, cwd=tree, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    for package in ("gnet", "dashboard"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_every_contract_has_a_violation_below():
    assert set(_contracts()) == set(VIOLATIONS)


def test_the_tree_keeps_every_contract():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(VIOLATIONS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_violation_breaks_its_contract(tree: Path, contract: str):
    assert _lint(tree, contract).returncode == 0  # the untouched copy keeps it
    path, line = VIOLATIONS[contract]
    with open(tree / path, "a") as f:
        f.write(f"\n{line}  # a deliberate violation\n")
    done = _lint(tree, contract)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 broken" in done.stdout
    assert " ".join(_contracts()[contract].split()[:4]) in " ".join(done.stdout.split())
