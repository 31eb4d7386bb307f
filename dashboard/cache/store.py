"""A small shared store for results whose computation reports progress."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["SharedStore"]


class SharedStore:
    """A small thread-safe LRU of results shared by every session (attributions, visualizations, indexes).

    Written here because ``st.cache_*`` cannot take this job: the computation reports progress
    to a bar drawn outside the cached function, and Streamlit records every element call made
    while a cached function runs to replay it later, on a container that the replaying run
    does not have.
    """

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
