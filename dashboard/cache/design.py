"""The Design lab's numbers, cached for every session: costs from the cost model at once, memory and
latency measured on request (per design, size, classes and device)."""

from __future__ import annotations

import streamlit as st

from dashboard.cache.bounds import DESIGNS_KEPT, DESIGN_MEASURES_KEPT, TTL_S

__all__ = ["compare", "measure", "recorded_runs", "stem_terms"]


def _design(choice: tuple):
    from gnet.net.design import Design

    stem, reductions, pool_proj, classifier, aux = choice
    return Design(stem=stem, reductions=reductions, pool_proj=pool_proj, classifier=classifier, aux=aux)


@st.cache_data(max_entries=DESIGNS_KEPT, ttl=TTL_S, show_spinner="Building the designs...")
def compare(choices: tuple[tuple, ...], input_size: int, num_classes: int) -> dict:
    """:func:`gnet.net.design.compare_designs` without measurement (the cost model only), as plain data.
    ``choices`` are (stem, reductions, pool_proj, classifier, aux) tuples; raises :class:`gnet.GNetError`."""
    from gnet.net.design import compare_designs

    result = compare_designs([_design(c) for c in choices], input_size=input_size, num_classes=num_classes,
                             memory=False, latency=False)
    return {**result.to_dict(), "stage_macs": {c.design.name: c.stage_macs for c in result.costs}}


@st.cache_data(max_entries=DESIGN_MEASURES_KEPT, ttl=TTL_S, show_spinner=False)
def measure(choice: tuple, input_size: int, num_classes: int, device: str, batch_size: int) -> dict:
    """The chosen design and the paper's, measured: activation memory (batch 1) and latency at ``batch_size``,
    interleaved; :meth:`gnet.net.design.DesignComparison.table` rows."""
    from gnet.net.design import compare_designs

    result = compare_designs([_design(choice)], input_size=input_size, num_classes=num_classes, memory=True,
                             latency=True, batch_sizes=(batch_size,), repeats=3, device=device)
    return {"table": result.table(), "device": result.latency.device}


@st.cache_data(show_spinner=False)
def stem_terms(input_size: int) -> list[dict]:
    """:func:`gnet.net.design.stem_terms` at ``input_size``."""
    from gnet.net.design import stem_terms as terms

    return terms(input_size)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def recorded_runs():
    """The recorded training comparison (:func:`gnet.train.runs.load_design_runs`)."""
    from gnet.train.runs import load_design_runs

    return load_design_runs()
