"""Drawing helpers every page shares: the error boundary, getting the model and analysis or saying why not, downloads."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

import gnet
from dashboard.cache import analyses, images, models, sets
from dashboard.state import Keys, Selection, show_sample

if TYPE_CHECKING:  # imported where used: the sidebar draws before pandas, plotly or torch is loaded
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "aux_heads_note",
    "chart",
    "domain_banner",
    "download_csv",
    "download_json",
    "error_boundary",
    "need_analysis",
    "need_model",
    "share_below",
    "try_analysis",
    "untrained_warning",
    "with_progress",
]

T = TypeVar("T")

_LOG = logging.getLogger("gnet.dashboard")
_PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


@contextmanager
def error_boundary(where: str) -> Iterator[None]:
    """Turn an exception escaping ``where`` (the sidebar, a page) into one short ``st.error``.

    A user's mistake (:class:`gnet.GNetError`) shows its own sentence. Anything else is a bug:
    the user gets a reference to report, the server log gets the traceback under that
    reference, and the rest of the app keeps working. Streamlit's own control flow
    (``st.stop``, ``st.rerun``, page switches) derives from BaseException and passes through.
    """
    try:
        yield
    except gnet.GNetError as e:
        st.error(str(e))
    except Exception:
        reference = uuid.uuid4().hex[:8]
        _LOG.exception("unexpected error in %s (reference %s)", where, reference)
        st.error(
            f"Something went wrong in {where} (reference {reference}): the rest of the app still works, so pick "
            "another page or image. If it happens again, report the reference; the details are in the server log.",
            icon="🐞",
        )


def need_model(sel: Selection) -> gnet.LoadedModel:
    """The selected model, or an error with the library's sentence and the page stops there."""
    if sel.weights_error:
        st.error(sel.weights_error)
        st.stop()
    try:
        return models.model(*sel.model_key)
    except gnet.GNetError as e:
        st.error(str(e))
        st.stop()


def try_analysis(sel: Selection) -> gnet.Analysis | None:
    """The cached analysis of the selected image, or None after saying why there is none."""
    if sel.image_error:
        st.error(sel.image_error)
        return None
    if sel.image is None:
        st.info("Choose an image in the sidebar: a sample, an upload or a camera photo.")
        return None
    try:
        return analyses.analysis(sel.weights, sel.device, sel.digest, sel.image)
    except gnet.GNetError as e:
        st.error(str(e))
        return None


def need_analysis(sel: Selection) -> tuple[gnet.LoadedModel, gnet.Analysis]:
    """The model and the cached analysis of the selected image, or why there is none (the page stops there)."""
    loaded = need_model(sel)
    result = try_analysis(sel)
    if result is None:
        st.stop()
    return loaded, result


def share_below(percentile: float) -> str:
    """``percentile`` (0 to 100) as the banner says it: "all" at 100, else rounded down, so that 99.96 reads
    "99.9% of" (it printed "100.0% of", which says every image when one or more scored higher)."""
    tenths = math.floor(round(percentile * 10, 6))  # rounded first: 57% as 0.57 * 100 is 56.99999999999999
    return "all" if percentile >= 100 else f"{tenths / 10:.1f}% of"


def domain_banner(sel: Selection, loaded: gnet.LoadedModel) -> None:
    """A warning when the selected image looks unlike the weights' training data, with a way back to the samples.

    The score is :func:`gnet.heads.in_domain.in_domain`; weights without calibration data get a
    caption saying so, never an invented score.
    """
    from gnet.heads.in_domain import NO_SCORE, THRESHOLD_PERCENTILE  # torch-heavy: imported where used, as above

    found = sets.in_domain(sel.weights, sel.device, sel.digest, sel.image)
    if found is None:
        st.caption(f":material/help: {NO_SCORE}")
        return
    if found.in_domain:
        return
    classes = loaded.classes
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    st.warning(
        f"**This image looks unlike the data these weights were trained on.** The model only knows these "
        f"{len(classes)} classes: {shown}. Whatever the image shows, the heads must pick one of them, so the labels "
        f"here mean little. (In-domain score {found.score:.1f}: less typical than {share_below(found.percentile)} "
        f"{found.reference}; the threshold, {found.threshold:.1f}, lets {THRESHOLD_PERCENTILE:g}% of them through.)",
        icon=":material/travel_explore:",
    )
    samples = [s for s in images.samples() if s.true_label(classes) is not None]
    if samples:
        st.button(
            f"Look at a sample the model knows ({samples[0].name})", key=Keys.DOMAIN_SAMPLE, on_click=show_sample,
            args=(samples[0],), icon=":material/photo_library:",
        )


def untrained_warning(loaded: gnet.LoadedModel) -> None:
    """A visible warning when some heads of the active weights were never trained."""
    untrained = loaded.card.untrained_heads
    if not untrained:
        return
    if len(untrained) == 3:
        st.warning("None of these weights' heads is trained: every prediction here is noise.", icon="⚠️")
    else:
        st.warning(
            f"The {' and '.join(untrained)} head(s) of these weights were never trained "
            f"({loaded.card.name}): their predictions are noise and say nothing about the architecture.",
            icon="⚠️",
        )


def chart(fig: go.Figure, caption: str, *, key: str | None = None) -> None:
    """A plotly figure (its toolbar downloads a PNG) with the line saying what to look at."""
    st.plotly_chart(fig, config=_PLOTLY_CONFIG, key=key)
    st.caption(caption)


def download_csv(frame: pd.DataFrame, label: str, file_name: str) -> None:
    st.download_button(
        label, frame.to_csv(index=False).encode(), file_name=file_name, mime="text/csv", on_click="ignore",
        icon=":material/download:",
    )


def download_json(data: Any, label: str, file_name: str) -> None:
    st.download_button(
        label, json.dumps(data, indent=2, default=str).encode(), file_name=file_name, mime="application/json",
        on_click="ignore", icon=":material/download:",
    )


def aux_heads_note(loaded: gnet.LoadedModel) -> None:
    """When the aux heads come from a distilled overlay: say so, and how that differs from the paper."""
    from gnet.weights.overlay import distilled

    about = distilled(loaded.card)
    if about is None:
        return
    data = about.get("data", {})
    st.info(
        f"aux1 and aux2 here are **distilled**: fitted after training, on a frozen trunk, to imitate the main "
        f"head's softened predictions ({about['file']}, distilled on {data.get('name', 'unknown data')}, "
        f"T = {about.get('temperature', '?')}). The paper trained them jointly "
        "with the whole net, their loss weighted 0.3, so they also shaped the layers below them; these show only "
        "what inception4a and inception4d already tell about the main head's answer.",
        icon=":material/school:",
    )


def with_progress(text: str, work: Callable[[Callable[[float], None]], T]) -> T:
    """Run ``work(progress)`` under a progress bar that moves a percent at a time."""
    bar = st.progress(0.0, text=text)
    shown = [-1]

    def progress(done: float) -> None:
        percent = int(done * 100)
        if percent != shown[0]:
            shown[0] = percent
            bar.progress(min(percent, 100) / 100, text=f"{text} {percent}%")

    try:
        return work(progress)
    finally:
        bar.empty()
