"""Export this analysis: the zip holds the results, their provenance, the figures and the tables."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import gnet
from dashboard import export
from dashboard.figures import charts, tables

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "fmnist_trouser_2.png"


@pytest.fixture(scope="module")
def parts():
    loaded = gnet.load("bundled", "cpu")
    result = gnet.analyze(loaded, SAMPLE)
    record = {"analysis": result.to_dict(), "weights": {"sha256": loaded.weights_hash}, "settings": {"module": "inception4c"}}
    tops = {h: [(p.label, p.prob) for p in head.top] for h, head in result.heads.items()}
    figures = {"heads_top5": charts.top_k_bars(tops), "shares": charts.energy_shares(tables.branch_energy(result))}
    frames = {"heads": tables.head_summary(result), "branches": tables.branch_stats(result)}
    return loaded, result, record, figures, frames


def _open(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_zip_holds_the_analysis_its_provenance_and_the_tables(parts):
    loaded, result, record, figures, frames = parts
    zf = _open(export.analysis_zip(record, figures, frames, png=False))
    saved = json.loads(zf.read("analysis.json"))
    assert saved["weights"]["sha256"] == loaded.weights_hash and len(saved["weights"]["sha256"]) == 64
    assert saved["analysis"]["heads"]["main"][0]["label"] == result.heads["main"].top[0].label
    assert saved["settings"] == {"module": "inception4c"} and "exported" in saved
    heads = pd.read_csv(io.BytesIO(zf.read("tables/heads.csv")))
    assert list(heads["head"]) == ["main", "aux1", "aux2"]
    assert len(pd.read_csv(io.BytesIO(zf.read("tables/branches.csv")))) == 36


def test_without_png_the_figures_are_offline_html(parts):
    *_, record, figures, frames = parts
    zf = _open(export.analysis_zip(record, figures, frames, png=False))
    names = set(zf.namelist())
    assert {"figures/heads_top5.html", "figures/shares.html", "figures/plotly.min.js"} <= names
    page = zf.read("figures/heads_top5.html").decode()
    assert 'src="plotly.min.js"' in page and "cdn" not in page.lower()  # opens without a network


def test_with_a_browser_the_figures_are_png(parts):
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium here: figures are exported as HTML")
    *_, record, figures, frames = parts
    zf = _open(export.analysis_zip(record, figures, frames, png=True))
    png = zf.read("figures/heads_top5.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "figures/plotly.min.js" not in zf.namelist()
