"""The Channels page's results, shared by every session: feature visualizations, dataset examples, knock-outs.

The rules of :mod:`dashboard.cache`: the bounds are set in :mod:`dashboard.cache.bounds`, torch and the rest of gnet are imported inside the functions. The labelled
set comes from :func:`dashboard.cache.sets.evaluation_set`, the one cache of image sets. The
computations that report progress to a bar are kept in a :class:`~dashboard.cache.store.SharedStore`
rather than an ``st.cache_*`` (see there why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dashboard.cache.analyses import analysis
from dashboard.cache.bounds import ABLATIONS_KEPT, CHANNEL_RESULTS_KEPT, TABLES_KEPT, TTL_S
from dashboard.cache.models import model
from dashboard.cache.sets import evaluation_set
from dashboard.cache.store import SharedStore

if TYPE_CHECKING:
    from gnet.inspect.ablation import Ablation, BranchImportance
    from gnet.inspect.examples import ExampleIndex
    from gnet.inspect.features import Visualization

__all__ = ["ablation", "branch_importance", "example_pictures", "examples", "visualization"]


@st.cache_resource(show_spinner=False)
def _channel_store() -> SharedStore:
    return SharedStore(CHANNEL_RESULTS_KEPT)


def visualization(
    weights: str, device: str, target: str, steps: int, *, compute: bool,
    progress: Callable[[float], None] | None = None,
) -> Visualization | None:
    """The feature visualization of ``target`` (seed 0): from memory, or computed when ``compute`` is set."""
    key = ("visualization", weights, device, target, steps)
    store = _channel_store()
    found = store.get(key)
    if found is not None or not compute:
        return found
    from gnet.inspect.features import visualize

    result = visualize(model(weights, device), target, steps=steps, progress=progress)
    store.put(key, result)
    return result


def examples(
    weights: str, device: str, folder: str, limit: int | None, *, compute: bool,
    progress: Callable[[float], None] | None = None,
) -> ExampleIndex | None:
    """The dataset-example index: shipped, cached in memory or on disk, or built when ``compute`` is set."""
    key = ("examples", weights, device, folder, limit)
    store = _channel_store()
    found = store.get(key)
    if found is not None:
        return found
    from gnet.inspect.examples import example_index

    data = evaluation_set(weights, device, folder or None, limit)
    index = example_index(model(weights, device), data, build=compute, progress=progress)
    if index is not None:
        store.put(key, index)
    return index


@st.cache_data(max_entries=TABLES_KEPT, ttl=TTL_S, show_spinner=False)
def example_pictures(weights: str, device: str, folder: str, limit: int | None, indices: tuple[int, ...]) -> list:
    """Images of the set as the network saw them (H x W x 3 in [0, 1]) with their class names."""
    from gnet.data.preprocess import denormalize

    loaded = model(weights, device)
    data = evaluation_set(weights, device, folder or None, limit)
    mean, std = loaded.card.normalization["mean"], loaded.card.normalization["std"]
    pictures = []
    for i, x in zip(indices, data.inputs(list(indices))):
        label = int(data.labels[i])
        picture = denormalize(x, mean, std) if mean and std else x.permute(1, 2, 0).numpy()
        pictures.append((picture, data.classes[label] if label >= 0 else "unlabelled"))
    return pictures


def branch_importance(
    weights: str, device: str, folder: str, limit: int | None, *, compute: bool,
    progress: Callable[[float], None] | None = None,
) -> BranchImportance | None:
    """Accuracy drops per branch and head: shipped, cached, or computed when ``compute`` is set."""
    key = ("importance", weights, device, folder, limit)
    store = _channel_store()
    found = store.get(key)
    if found is not None:
        return found
    from gnet.inspect.ablation import importance

    loaded = model(weights, device)
    # The whole test set is not read when the shipped table fits (it is also used without the dataset).
    data = evaluation_set(weights, device, folder or None, limit) if folder or limit else None
    result = importance(loaded, data, build=compute, progress=progress)
    if result is not None:
        store.put(key, result)
    return result


@st.cache_resource(max_entries=ABLATIONS_KEPT, ttl=TTL_S, show_spinner=False)
def ablation(weights: str, device: str, digest: str, knockouts: tuple[str, ...], _image: Image.Image) -> Ablation:
    """The heads on the analysed image with ``knockouts`` zeroed (none: the intact net); shared read-only."""
    from gnet.inspect.ablation import ablate

    x = analysis(weights, device, digest, _image).input
    return ablate(model(weights, device), x, knockouts)
