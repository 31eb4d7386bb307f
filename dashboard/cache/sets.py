"""The Heads page's dataset-wide results, cached: thin wrappers around gnet.inspect.evaluation, headlogits, headstats, earlyexit.

The rules of :mod:`dashboard.cache`: every cache is shared by all sessions and bounded in
:mod:`dashboard.cache.bounds`; torch and the rest of gnet are imported inside
the functions. :func:`evaluation_set` is the one cache of labelled image sets, also used by the
Channels page (:mod:`dashboard.cache.channels`). The data's ``key`` argument is a digest of the set's
:attr:`~gnet.inspect.evaluation.LabelledImages.key` (a folder's files, sizes and times), so a changed
folder is never answered from an old result.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dashboard.cache.analyses import analysis
from dashboard.cache.bounds import LOGIT_SETS_KEPT, SET_RESULTS_KEPT, SET_TTL_S, SETS_KEPT, TABLES_KEPT, TTL_S
from dashboard.cache.models import model

if TYPE_CHECKING:
    from gnet.heads.early_exit import ExitCurve
    from gnet.heads.in_domain import InDomain
    from gnet.heads.logits import HeadLogitSet, Progress
    from gnet.heads.readout import ProbeCurve
    from gnet.heads.stats import Disagreement, HeadComparison
    from gnet.inspect.evaluation import LabelledImages

__all__ = [
    "NotStored", "data_key", "evaluation_set", "exit_curve", "gallery", "head_comparison", "head_logits", "in_domain", "probe_curve",
    "stored_probe_curve", "thumbnails",
]


@st.cache_resource(max_entries=SETS_KEPT, ttl=SET_TTL_S, show_spinner="Reading the image set...")
def evaluation_set(weights: str, device: str, folder: str | None, limit: int | None = None) -> LabelledImages:
    """:func:`gnet.inspect.evaluation.evaluation_set`: ``folder``, else the Fashion-MNIST test set or the samples
    (the first ``limit`` images when given).

    Raises gnet.DatasetError.
    """
    from gnet.inspect.evaluation import evaluation_set as find

    return find(model(weights, device), folder, limit=limit)


def data_key(weights: str, device: str, folder: str | None) -> str:
    """A digest of the set's key: with the weights, it names every result below."""
    key = json.dumps(evaluation_set(weights, device, folder).key, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


class NotStored(Exception):
    """The logits must be computed: raised, not returned, because Streamlit caches return values only."""


@st.cache_resource(max_entries=LOGIT_SETS_KEPT, ttl=TTL_S, show_spinner="Reading the heads' logits...")
def _stored_logits(weights: str, device: str, folder: str | None, key: str) -> HeadLogitSet:
    from gnet.heads.logits import stored_logits

    found = stored_logits(model(weights, device), evaluation_set(weights, device, folder))
    if found is None:
        raise NotStored
    return found


def head_logits(
    weights: str, device: str, folder: str | None, key: str, progress: Progress | None = None
) -> HeadLogitSet:
    """The heads' logits over the set: kept in memory once read from the shipped file or the disk cache;
    otherwise computed, reporting ``progress`` to a bar the page draws (a cached function cannot: see
    :class:`dashboard.cache.store.SharedStore`), and written to the disk cache, where the next run
    finds them."""
    from gnet.heads.logits import head_logits as compute

    try:
        return _stored_logits(weights, device, folder, key)
    except NotStored:
        return compute(model(weights, device), evaluation_set(weights, device, folder), progress=progress)


@st.cache_data(max_entries=SET_RESULTS_KEPT, ttl=TTL_S, show_spinner="Reading the linear probes...")
def stored_probe_curve(weights: str, device: str, folder: str | None, key: str) -> ProbeCurve:
    """The probe curve (:func:`gnet.heads.readout.probes`) when it is shipped or in the disk cache; raises
    :class:`NotStored` otherwise (not cached, so a curve computed later is found). Raises gnet.DatasetError."""
    from gnet.heads.readout import probes

    found = probes(model(weights, device), folder, build=False)
    if found is None:
        raise NotStored
    return found


def probe_curve(weights: str, device: str, folder: str | None, key: str, progress=None) -> ProbeCurve:
    """The probe curve, stored or computed now with ``progress(fraction)`` (then kept in the disk cache)."""
    from gnet.heads.readout import probes

    try:
        return stored_probe_curve(weights, device, folder, key)
    except NotStored:
        return probes(model(weights, device), folder, progress=progress)


@st.cache_data(max_entries=SET_RESULTS_KEPT, ttl=TTL_S, show_spinner="Comparing the heads...")
def head_comparison(weights: str, device: str, key: str, _logits: HeadLogitSet) -> HeadComparison:
    """:func:`gnet.heads.stats.compare_heads` of the set's logits."""
    from gnet.heads.stats import compare_heads

    return compare_heads(_logits, model(weights, device).card.heads_trained)


@st.cache_data(max_entries=SET_RESULTS_KEPT, ttl=TTL_S, show_spinner=False)
def exit_curve(weights: str, device: str, key: str, _logits: HeadLogitSet) -> ExitCurve:
    """:func:`gnet.heads.early_exit.early_exits` with the loaded net's costs at its input size."""
    import gnet
    from gnet.heads.early_exit import early_exits, exit_costs

    loaded = model(weights, device)
    size = loaded.card.input_size
    return early_exits(_logits, exit_costs(gnet.flops(loaded.net, size), size))


@st.cache_data(max_entries=SET_RESULTS_KEPT, ttl=TTL_S, show_spinner=False)
def gallery(weights: str, device: str, key: str, _logits: HeadLogitSet, limit: int) -> list[Disagreement]:
    """The ``limit`` largest disagreements between an aux head and main (:func:`gnet.heads.stats.disagreements`)."""
    from gnet.heads.stats import disagreements

    return disagreements(_logits, limit=limit)


@st.cache_data(max_entries=SET_RESULTS_KEPT, ttl=TTL_S, show_spinner=False)
def thumbnails(
    weights: str, device: str, folder: str | None, key: str, indices: tuple[int, ...], size: int = 96
) -> list[bytes]:
    """Images ``indices`` of the set as PNGs of at most ``size`` px a side (small ones stay small; the page scales)."""
    data = evaluation_set(weights, device, folder)
    found = []
    for index in indices:
        picture = data.picture(index)
        picture.thumbnail((size, size))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        found.append(buffer.getvalue())
    return found


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def in_domain(weights: str, device: str, digest: str, _image: Image.Image) -> InDomain | None:
    """:func:`gnet.heads.in_domain.in_domain` of the cached analysis (its reference is fitted on the
    training set and calibrated on the test set); None when the weights have no calibration data."""
    from gnet.heads.in_domain import in_domain as score

    return score(model(weights, device), analysis(weights, device, digest, _image))
