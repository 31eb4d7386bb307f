"""The Channels page's circuits, shared by every session: connections, their thumbnails, families.

The rules of :mod:`dashboard.cache`: bounds in :mod:`dashboard.cache.bounds`, torch and gnet's
computations imported inside the functions. Connections from the weights take milliseconds and
are kept with ``st.cache_data``; the thumbnails' batched optimization and the families report
progress to a bar, so they are kept in a :class:`~dashboard.cache.store.SharedStore`, as the
Channels page's other long results are (:mod:`dashboard.cache.channels`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dashboard.cache.analyses import analysis
from dashboard.cache.bounds import CHANNEL_RESULTS_KEPT, CIRCUITS_KEPT, TTL_S
from dashboard.cache.models import model
from dashboard.cache.sets import evaluation_set
from dashboard.cache.store import SharedStore

if TYPE_CHECKING:
    from gnet.inspect.circuits import Circuit
    from gnet.inspect.families import Families
    from gnet.inspect.features import Visualization

__all__ = ["circuit", "contributions", "diverse", "families", "thumbnails"]

Progress = Callable[[float], None]


@st.cache_resource(show_spinner=False)
def _store() -> SharedStore:
    return SharedStore(CHANNEL_RESULTS_KEPT)


@st.cache_resource(max_entries=CIRCUITS_KEPT, ttl=TTL_S, show_spinner=False)
def circuit(weights: str, device: str, target: str, direction: str, k: int) -> Circuit:
    """The expanded-weight connections of ``target``, ``upstream`` or ``downstream``; shared read-only."""
    from gnet.inspect.circuits import downstream, upstream

    find = upstream if direction == "upstream" else downstream
    return find(model(weights, device), target, k=k)


@st.cache_resource(max_entries=CIRCUITS_KEPT, ttl=TTL_S, show_spinner=False)
def contributions(weights: str, device: str, digest: str, target: str, k: int, _image: Image.Image) -> Circuit:
    """What each channel below contributes to ``target`` on the analysed image (integrated gradients)."""
    from gnet.inspect.contributions import contributions as attribute

    x = analysis(weights, device, digest, _image).input.unsqueeze(0)
    return attribute(model(weights, device), target, x, k=k)


def thumbnails(
    weights: str, device: str, targets: tuple[str, ...], steps: int, *, compute: bool,
    progress: Progress | None = None,
) -> list[Visualization] | None:
    """One feature visualization per channel of ``targets``, from one batched optimization (seed 0)."""
    key = ("thumbnails", weights, device, targets, steps)
    store = _store()
    found = store.get(key)
    if found is not None or not compute:
        return found
    from gnet.inspect.features import visualize_many

    result = visualize_many(model(weights, device), list(targets), steps=steps, progress=progress)
    store.put(key, result)
    return result


def diverse(
    weights: str, device: str, target: str, steps: int, count: int, *, compute: bool,
    progress: Progress | None = None,
) -> list[Visualization] | None:
    """``count`` images of one channel, pushed apart by the diversity objective (seed 0)."""
    key = ("diverse", weights, device, target, steps, count)
    store = _store()
    found = store.get(key)
    if found is not None or not compute:
        return found
    from gnet.inspect.features import DIVERSITY, visualize_many

    result = visualize_many(model(weights, device), [target] * count, steps=steps, diversity=DIVERSITY,
                            progress=progress)
    store.put(key, result)
    return result


def families(
    weights: str, device: str, module: str, folder: str, limit: int | None, *, compute: bool,
    progress: Progress | None = None,
) -> Families | None:
    """The channel families of ``module`` over the chosen set: from memory, the disk cache, or computed."""
    key = ("families", weights, device, module, folder, limit)
    store = _store()
    found = store.get(key)
    if found is not None:
        return found
    from gnet.inspect.families import FAMILY_IMAGES
    from gnet.inspect.families import families as group

    data = evaluation_set(weights, device, folder or None, limit or FAMILY_IMAGES)
    result = group(model(weights, device), module, data, build=compute, progress=progress)
    if result is not None:
        store.put(key, result)
    return result
