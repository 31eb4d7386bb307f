"""The app's server: :mod:`dashboard.app` on Streamlit's own server, warming up as it starts.

Run from the repository root: ``streamlit run dashboard/serve.py`` (what ``run.sh`` does).

A visitor's first page needs torch, torchvision, gnet and the page modules imported: most of
the 9 s that ``import torch, torchvision, streamlit`` takes on this project's 2-core CPU.
Streamlit would import them only once that visitor's browser has loaded the page and
connected. Here a background thread starts importing them as the server starts (``st.App``'s
lifespan hook), then loads the default weights, so this work overlaps the browser's own
loading, and a visitor who arrives later finds it done. The server accepts connections at
once: a visitor never waits for the warm-up to finish, only for what their page needs.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
_WARM_UP_THREAD = "gnet-warm-up"


class _NoPageWarning(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning raised in the warm-up thread: the cached
    loader's spinner looks for a page to draw on, and the warm-up has none (no one is waiting to see it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != _WARM_UP_THREAD or "missing ScriptRunContext" not in str(record.msg)


_NO_PAGE_WARNING = _NoPageWarning()


def _warm_up() -> None:
    """Import what the first page needs, then load the weights the sidebar starts on.

    Imports are idempotent and thread-safe: a page importing the same module meanwhile waits for
    this thread's import instead of starting its own. The weights go into :func:`dashboard.cache.models.model`'s
    cache under the key the sidebar will ask for; a page asking while they load waits for them
    (Streamlit computes one key once), so no visitor loads them twice. Measured with AppTest on the
    bundled weights, three runs each: a first page's script took 1.45 to 1.6 s with the weights
    still to load, 0.59 to 0.8 s with them loaded.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        importlib.import_module("dashboard.views.overview")  # gnet, torch, pandas, plotly
        importlib.import_module("gnet.weights.loader")  # torchvision
        from dashboard import state
        from dashboard.cache import models

        logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NO_PAGE_WARNING)
        device, error = state.resolved_device()
        if error is None:
            models.model(state.default_weights(), device)
    except Exception as e:  # noqa: BLE001  the page imports and loads them again and shows the error to its user
        logging.getLogger(__name__).debug("warm-up stopped: %s", e)


@asynccontextmanager
async def _lifespan(_app):
    threading.Thread(target=_warm_up, name=_WARM_UP_THREAD, daemon=True).start()
    yield


app = st.App("app.py", lifespan=_lifespan)
