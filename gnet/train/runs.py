"""The recorded gradient runs in ``assets/runs/``, read into tidy tables.

``assets/runs/`` holds short Fashion-MNIST training runs (the ``grad_log.jsonl`` that
:mod:`gnet.train.loop` writes, see :mod:`gnet.train.gradlog`, one per run, listed in ``index.json``)
and the comparison of fresh nets at initialisation (``compare_variants.csv``, from
:func:`gnet.inspect.gradients.compare_variants`); its README says how they were made. Both the
index and every log line carry a format version (``"v": 2``); a file that is missing,
unreadable or of another version raises :class:`~gnet.errors.DatasetError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DatasetError
from ..inspect.gradients import COLUMNS, VARIANT_COLUMNS
from ..storage import ASSETS_DIR
from . import gradlog

__all__ = [
    "DESIGN_RUNS_FILE",
    "DESIGN_RUNS_VERSION",
    "RUNS_DIR",
    "RUNS_VERSION",
    "DesignRuns",
    "RecordedRuns",
    "load_design_runs",
    "load_runs",
]

RUNS_DIR = ASSETS_DIR / "runs"
RUNS_VERSION = gradlog.VERSION  # the "v" of index.json, the same as every grad_log.jsonl line's
COMPARISON_FILE = "compare_variants.csv"
_COMPARISON_COLUMNS = (*VARIANT_COLUMNS, *COLUMNS)
_INDEX_FIELDS = ("name", "file", "batch_norm", "aux", "init", "steps")
# The design lab's training comparison (scripts/record_design_runs.py), one JSON file.
DESIGN_RUNS_FILE = ASSETS_DIR / "design_runs.json"
DESIGN_RUNS_VERSION = 1
_DESIGN_RUN_FIELDS = ("name", "design", "curve", "steps", "test_accuracy", "time_per_step_s", "peak_rss_mb", "params")


@dataclass(frozen=True)
class RecordedRuns:
    """The contents of ``assets/runs/`` as tidy tables.

    - ``index``: one row per training run, the fields of ``index.json`` with
      ``test_accuracy`` spread into ``accuracy_main``, ``accuracy_aux1``, ``accuracy_aux2``;
    - ``grad_norms``: run, step, layer, depth, kind, norm (weight-gradient L2 norm of the
      optimised loss, 0 where no gradient reached the layer);
    - ``losses``: run, step, head (main, aux1, aux2, total), loss;
    - ``comparison``: :func:`gnet.inspect.gradients.compare_variants`' tidy table at initialisation.
    """

    index: pd.DataFrame
    grad_norms: pd.DataFrame
    losses: pd.DataFrame
    comparison: pd.DataFrame


def _checked_version(record: Any, where: str, version: int = RUNS_VERSION) -> dict:
    if not isinstance(record, dict):
        raise DatasetError(f"{where} is not a JSON object; restore it from the repository.")
    if record.get("v") != version:
        raise DatasetError(
            f"{where} has format version {record.get('v')!r}; this gnet reads version {version}, "
            "so restore the file from the repository or update gnet."
        )
    return record


def _read_index(directory: Path) -> list[dict]:
    path = directory / "index.json"
    if not path.is_file():
        raise DatasetError(f"recorded runs not found: {path} is missing; restore assets/runs from the repository.")
    try:
        index = _checked_version(json.loads(path.read_text()), str(path))
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path} is not readable JSON ({e}); restore it from the repository.") from e
    runs = index.get("runs")
    if not isinstance(runs, list) or not runs:
        raise DatasetError(f"{path} lists no runs; restore it from the repository.")
    for entry in runs:
        missing = [f for f in _INDEX_FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise DatasetError(f"{path} has a run without {missing[0]!r}; restore it from the repository.")
    return runs


def _read_comparison(directory: Path) -> pd.DataFrame:
    path = directory / COMPARISON_FILE
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as e:
        raise DatasetError(f"{path} is missing; restore it or rerun `python -m gnet gradients --compare --csv`.") from e
    except (OSError, ValueError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise DatasetError(f"{path} is not a readable CSV file ({e}); restore it from the repository.") from e
    missing = [c for c in _COMPARISON_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path} has no column {missing[0]!r}; restore it from the repository.")
    return frame[list(_COMPARISON_COLUMNS)].astype({**VARIANT_COLUMNS, **COLUMNS})


def load_runs(directory: Path | str = RUNS_DIR) -> RecordedRuns:
    """Read ``index.json``, every run's log and ``compare_variants.csv`` from ``directory``."""
    directory = Path(directory)
    runs = _read_index(directory)
    norms, losses = [], []
    for entry in runs:
        n, loss = gradlog.read_grad_log(directory / entry["file"], entry["name"])
        if n.empty:
            raise DatasetError(f"gradient log {directory / entry['file']} is empty; restore it from the repository.")
        norms.append(n)
        losses.append(loss)
    index = pd.DataFrame(
        [
            {**{k: v for k, v in entry.items() if k != "test_accuracy"},
             **{f"accuracy_{head}": acc for head, acc in (entry.get("test_accuracy") or {}).items()}}
            for entry in runs
        ]
    )
    return RecordedRuns(
        index=index,
        grad_norms=pd.concat(norms, ignore_index=True),
        losses=pd.concat(losses, ignore_index=True),
        comparison=_read_comparison(directory),
    )


@dataclass(frozen=True)
class DesignRuns:
    """``assets/design_runs.json`` as tidy tables.

    - ``summary``: one row per design: name, steps, accuracy_main / _aux1 / _aux2 (on ``eval_images``
      test images), time_per_step_s, peak_rss_mb, params, wall_time_s, command;
    - ``curves``: run, step, train_wall_s, head, accuracy (every ``--eval-every`` steps).
    """

    summary: pd.DataFrame
    curves: pd.DataFrame
    batch_size: int
    input_size: int


def load_design_runs(path: Path | str = DESIGN_RUNS_FILE) -> DesignRuns:
    """Read the design lab's recorded training runs; :class:`DatasetError` names a missing or damaged file."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} cannot be read ({e}); restore it from the repository.") from None
    body = _checked_version(body, str(path), DESIGN_RUNS_VERSION)
    runs = body.get("runs")
    if not isinstance(runs, list) or not runs or not all(
        isinstance(r, dict) and all(k in r for k in _DESIGN_RUN_FIELDS) for r in runs
    ):
        raise DatasetError(f"{path} lists no complete run; restore it from the repository.")
    summary = pd.DataFrame([
        {**{k: r[k] for k in _DESIGN_RUN_FIELDS if k not in ("design", "curve", "test_accuracy")},
         **{f"accuracy_{h}": a for h, a in r["test_accuracy"].items()},
         "eval_images": r.get("eval_images"), "wall_time_s": r.get("wall_time_s"), "command": r.get("command", "")}
        for r in runs
    ])
    curves = pd.DataFrame([
        {"run": r["name"], "step": point["step"], "train_wall_s": point["train_wall_s"], "head": h, "accuracy": a}
        for r in runs for point in r["curve"] for h, a in point["accuracy"].items()
    ])
    return DesignRuns(summary=summary, curves=curves, batch_size=body.get("batch_size"), input_size=body.get("input_size"))
