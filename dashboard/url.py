"""Views a user can share: the query parameters that carry the state of a view, the only module that names them.

A widget whose value belongs in the URL is drawn between two calls::

    url.restore(url.MODULE, Keys.BRANCH_MODULE, default, valid)   # before the widget
    module = st.selectbox(..., key=Keys.BRANCH_MODULE)             # no index=/value=: the state holds it
    url.publish(url.MODULE, module)                                 # after it

On the first run of a session, :func:`restore` takes the widget's value from ``?module=...``
when it is valid, so a URL opened in a fresh browser shows the same view; a bad or stale value
falls back to the default with a short notice, never an exception. :func:`publish` writes the
value back, so the address bar follows every change. The page itself is the URL's path
(Streamlit's navigation); uploaded images and checkpoint paths are never put in a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.state import Keys

__all__ = ["PARAMS", "publish", "restore"]

SAMPLE = "sample"
WEIGHTS = "weights"
MODULE = "module"
BRANCH = "branch"
CHANNEL = "channel"
HEAD = "head"
CLASS = "class"
METHOD = "method"
SIZE = "size"
PARAMS = (SAMPLE, WEIGHTS, MODULE, BRANCH, CHANNEL, HEAD, CLASS, METHOD, SIZE)


def restore(
    param: str,
    key: str,
    default: Any,
    valid: Callable[[Any], bool],
    *,
    parse: Callable[[str], Any] = str,
    what: str | None = None,
) -> None:
    """Set widget ``key``'s value before it is drawn: from ``?param=`` on the session's first look, else ``default``.

    ``valid`` says whether a value can be shown now (a channel index within the branch, a class
    of the loaded weights). A value that is not valid, from the URL or left from another view,
    falls back to ``default``; a bad URL value also gets a notice naming ``what`` it should be.
    """
    read: set[str] = st.session_state.setdefault(Keys.URL_READ, set())
    if param not in read:
        read.add(param)
        raw = st.query_params.get(param)
        if raw is not None:
            try:
                value = parse(raw)
                ok = valid(value)
            except (ValueError, KeyError, IndexError, TypeError):
                ok = False
            if ok:
                st.session_state[key] = value
            else:
                st.toast(f"Ignored {param}={raw} in the address: not a {what or param} of this view, so the default "
                         "is shown.", icon="🔗")
    try:
        keep = key in st.session_state and valid(st.session_state[key])
    except (ValueError, KeyError, IndexError, TypeError):
        keep = False
    if not keep:
        st.session_state[key] = default


def publish(param: str, value: Any, *, show: Callable[[Any], str] = str) -> None:
    """Write the widget's value to ``?param=`` (None removes it), so the address bar shows the view."""
    text = None if value is None else show(value)
    if text is None:
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != text:
        st.query_params[param] = text
