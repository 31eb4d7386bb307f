"""The gradient log, ``grad_log.jsonl``: one JSON line of losses and per-layer gradient norms every few steps.

:mod:`gnet.train.loop` writes it during a run and :mod:`gnet.train.runs` (and the dashboard's live run)
read it back as tidy tables. Each line::

    {"v": 2, "step": 50, "loss": {"main": .., "aux1": .., "aux2": .., "total": ..},
     "grad_norm": {"conv1.conv": .., "conv2.conv": .., ..., "fc": ..}}

``grad_norm`` holds the L2 norm of the weight gradient of the loss being minimised for every
layer of :data:`gnet.net.layers.WEIGHT_LAYERS`, in forward order, named as that table names them
(version 1 used other names); a layer that got no gradient (the aux heads with ``--no-aux``) has 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import DatasetError
from ..net.layers import point

__all__ = ["VERSION", "format_line", "read_grad_log", "trim"]

VERSION = 2
NORM_COLUMNS = ["run", "step", "layer", "depth", "kind", "norm"]
LOSS_COLUMNS = ["run", "step", "head", "loss"]


def _round4(x: float) -> float:
    return float(f"{x:.4g}")


def format_line(step: int, losses: dict[str, float], norms: dict[str, float]) -> str:
    """One log line (no newline) for ``step``, values rounded to 4 significant digits."""
    return json.dumps({
        "v": VERSION, "step": step,
        "loss": {k: _round4(v) for k, v in losses.items()},
        "grad_norm": {k: _round4(v) for k, v in norms.items()},
    })


def _logged_step(line: str) -> int | None:
    """The step of a log line, or None for a line that is not a complete entry of this version."""
    try:
        record = json.loads(line)
        step = record["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) and record.get("v") == VERSION else None


def trim(path: Path, step: int) -> None:
    """Drop lines past ``step``: a resumed run may have logged beyond its checkpoint, a fresh one starts empty.

    Lines that do not parse go too: a run killed while writing leaves half a line at the end.
    """
    if not path.exists():
        return
    text = path.read_text()
    kept = [line for line in text.splitlines() if (logged := _logged_step(line)) is not None and logged <= step]
    trimmed = "".join(line + "\n" for line in kept)
    if trimmed != text:
        path.write_text(trimmed)


def read_grad_log(path: Path | str, run: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A gradient log as (norms, losses) frames.

    norms: run, step, layer, depth, kind, norm (depth and kind from :mod:`gnet.net.layers`);
    losses: run, step, head (main, aux1, aux2, total), loss. ``run`` fills the run column.
    Raises :class:`DatasetError` naming the file and line that cannot be read.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DatasetError(f"gradient log {path} cannot be read ({e.strerror or e}); restore it.") from e
    norms, losses = [], []
    for number, line in enumerate(lines, start=1):
        where = f"{path}, line {number},"
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError("not a JSON object")
            if record.get("v") != VERSION:
                raise DatasetError(
                    f"{where} has format version {record.get('v')!r}; this gnet reads version {VERSION}, "
                    "so restore the file from the repository or record the run again."
                )
            step = int(record["step"])
            for layer, norm in record["grad_norm"].items():
                p = point(layer)
                norms.append({"run": run, "step": step, "layer": layer, "depth": p.depth, "kind": p.kind,
                              "norm": float(norm)})
            losses += [{"run": run, "step": step, "head": head, "loss": float(v)} for head, v in record["loss"].items()]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise DatasetError(
                f"{where[:-1]} is not a gradient-log record ({type(e).__name__}: {e}); restore it."
            ) from e
    return pd.DataFrame(norms, columns=NORM_COLUMNS), pd.DataFrame(losses, columns=LOSS_COLUMNS)
