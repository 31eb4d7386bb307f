"""Attribution maps, shared by every session, computed on request with progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st
from PIL import Image

from dashboard.cache.analyses import analysis
from dashboard.cache.bounds import ATTRIBUTIONS_KEPT
from dashboard.cache.models import model
from dashboard.cache.store import SharedStore

if TYPE_CHECKING:
    from gnet.inspect.attributions import Attribution

__all__ = ["AttributionRequest", "attribution"]


@dataclass(frozen=True)
class AttributionRequest:
    """Everything that determines one attribution map (the cache key, with model and image)."""

    method: str
    head: str
    target: int
    module: str = ""
    branch: str = ""
    n_steps: int = 16
    nt_samples: int = 4


@st.cache_resource(show_spinner=False)
def _attribution_store() -> SharedStore:
    return SharedStore(ATTRIBUTIONS_KEPT)


def attribution(
    weights: str,
    device: str,
    digest: str,
    image: Image.Image,
    request: AttributionRequest,
    *,
    compute: bool,
    progress: Callable[[float], bool | None] | None = None,
) -> Attribution | None:
    """The attribution map for ``request``: from memory, or computed when ``compute`` is set.

    ``progress`` returning False stops Integrated Gradients (gnet.inspect.attributions.Stopped is raised).
    """
    key = (weights, device, digest, request)
    store = _attribution_store()
    found = store.get(key)
    if found is not None or not compute:
        return found
    loaded = model(weights, device)
    x = analysis(weights, device, digest, image).input.unsqueeze(0)
    options = {}
    if request.method == "integrated_gradients":
        options = {"n_steps": request.n_steps, "nt_samples": request.nt_samples}
    from gnet.inspect.attributions import GRAD_CAM_BRANCH, GRAD_CAM_MODULE, attribute

    result = attribute(
        loaded,
        x,
        request.method,
        head=request.head,
        target=request.target,
        module=request.module or GRAD_CAM_MODULE,
        branch=request.branch or GRAD_CAM_BRANCH,
        progress=progress,
        **options,
    )
    store.put(key, result)
    return result
