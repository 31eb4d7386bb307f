"""The server's warm-up (dashboard/serve.py): what it leaves cached, and what it keeps out of the log."""

from __future__ import annotations

import logging
import threading

import pytest

import gnet
from dashboard import serve, state
from dashboard.cache import models


def test_the_warm_up_leaves_the_default_weights_loaded_under_the_sidebars_key(app_weights, monkeypatch):
    models.model.clear()
    try:
        serve._warm_up()

        def no_second_load(*_args, **_kwargs):
            raise AssertionError("the page loaded the weights again")

        monkeypatch.setattr(gnet, "load", no_second_load)
        device, error = state.resolved_device()
        assert error is None
        # The sidebar's call for a named source: Selection.model_key, whose label is empty.
        sel = state.Selection(weights=state.default_weights(), device=device, weights_label="")
        loaded = models.model(*sel.model_key)
        assert isinstance(loaded, gnet.LoadedModel) and loaded.device == gnet.resolve_device()
    finally:
        models.model.clear()


@pytest.mark.parametrize("thread_name", [serve._WARM_UP_THREAD, "ScriptRunner.scriptThread"])
def test_only_the_warm_up_threads_missing_page_warning_is_dropped(thread_name):
    seen: list[bool] = []

    def log() -> None:
        for message in ("Thread %r: missing ScriptRunContext! This warning can be ignored", "something else"):
            record = logging.LogRecord("streamlit", logging.WARNING, __file__, 1, message, None, None)
            seen.append(serve._NO_PAGE_WARNING.filter(record))

    worker = threading.Thread(target=log, name=thread_name)
    worker.start()
    worker.join()
    assert seen == [thread_name != serve._WARM_UP_THREAD, True]
