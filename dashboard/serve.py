"""The app's server: :mod:`dashboard.app` on Streamlit's own server, warming up as it starts.

Run from the repository root: ``streamlit run dashboard/serve.py`` (what ``run.sh`` does).

A visitor's first page needs torch, torchvision, gnet and the page modules imported: most of
the 9 s that ``import torch, torchvision, streamlit`` takes on this project's 2-core CPU.
Streamlit would import them only once that visitor's browser has loaded the page and
connected. Here a background thread starts importing them as the server starts (``st.App``'s
lifespan hook), so the import overlaps the browser's own loading, and a visitor who arrives
later finds them done. The server accepts connections at once: a visitor never waits for the
warm-up to finish, only for the imports their page needs.
"""

from __future__ import annotations

import importlib
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent


def _warm_up() -> None:
    """Import what the first page needs (imports are idempotent and thread-safe: a page importing
    the same module meanwhile waits for this thread's import instead of starting its own)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        importlib.import_module("dashboard.views.overview")  # gnet, torch, pandas, plotly
        importlib.import_module("gnet.weights")  # torchvision
    except Exception:  # noqa: BLE001  the page imports them again and shows what failed where a user sees it
        pass


@asynccontextmanager
async def _lifespan(_app):
    threading.Thread(target=_warm_up, name="gnet-warm-up", daemon=True).start()
    yield


app = st.App("app.py", lifespan=_lifespan)
