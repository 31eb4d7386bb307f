"""Export this analysis: one zip a user can send, from which someone else can check the result.

It holds ``analysis.json`` (everything the forward pass gave, the image's digest, the weights'
sha256, the preprocessing, the device and every setting of the view), the figures (PNG when
plotly can render them with a browser installed here, through kaleido; else HTML pages that
share one copy of plotly.js, so they open offline), and the tables as CSV.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["analysis_zip", "figure_files"]

_LOG = logging.getLogger("gnet.dashboard")


def figure_files(figures: Mapping[str, go.Figure], *, png: bool = True) -> dict[str, bytes]:
    """``{file name: bytes}`` for the figures: PNG when a browser can render them here, else HTML.

    kaleido drives a local Chrome or Chromium; without one (or when it fails) the same figures
    come out as HTML files that load a ``plotly.min.js`` shipped in the same folder.
    """
    if png and figures:
        import plotly.io as pio

        try:
            with tempfile.TemporaryDirectory(prefix="gnet-export-") as folder:
                paths = [Path(folder) / f"{name}.png" for name in figures]
                pio.write_images(list(figures.values()), [str(p) for p in paths], scale=2)
                return {f"figures/{p.name}": p.read_bytes() for p in paths}
        except Exception as e:  # no browser, or kaleido failed: the HTML below shows the same figures
            _LOG.info("figures exported as HTML, not PNG (%s: %s)", type(e).__name__, e)
    from plotly.offline import get_plotlyjs

    files = {
        f"figures/{name}.html": fig.to_html(include_plotlyjs="directory", full_html=True).encode()
        for name, fig in figures.items()
    }
    if files:
        files["figures/plotly.min.js"] = get_plotlyjs().encode()
    return files


def analysis_zip(
    record: Mapping[str, Any],
    figures: Mapping[str, go.Figure],
    tables: Mapping[str, pd.DataFrame],
    *,
    png: bool = True,
) -> bytes:
    """The zip: ``analysis.json`` (``record`` plus the time it was made), ``figures/``, ``tables/*.csv``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        made = {**record, "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        zf.writestr("analysis.json", json.dumps(made, indent=2, default=str))
        for name, frame in tables.items():
            zf.writestr(f"tables/{name}.csv", frame.to_csv(index=False))
        for name, data in figure_files(figures, png=png).items():
            zf.writestr(name, data)
    return buffer.getvalue()
