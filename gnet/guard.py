"""Exclusive, mode-restoring access to a model shared between threads.

Streamlit's ``st.cache_resource`` hands one model object to every session and thread.
Hooks and ``train()``/``eval()`` are state on that object, so every piece of code
that touches them enters :func:`exclusive` first: it takes the model's lock, sets
the mode, and restores the caller's mode in ``finally`` even when the body raises.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["exclusive", "model_lock"]

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(net: nn.Module) -> threading.RLock:
    """The one lock associated with ``net`` (created on first use, freed with the model)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(net)
        if lock is None:
            lock = _LOCKS[net] = threading.RLock()
        return lock


@contextmanager
def exclusive(net: nn.Module, *, training: bool = False) -> Iterator[nn.Module]:
    """Hold ``net``'s lock and put it in train or eval mode; restore the mode on exit."""
    with model_lock(net):
        modes = {m: m.training for m in net.modules()}
        net.train(training)
        try:
            yield net
        finally:
            # Restore per submodule: a caller may have mixed modes (e.g. frozen batch norm).
            for m, mode in modes.items():
                m.training = mode
