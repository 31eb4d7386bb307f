"""Exclusive, mode-restoring access to a model shared between threads.

Streamlit's ``st.cache_resource`` hands one model object to every session and thread.
Hooks and ``train()``/``eval()`` are state on that object, so every piece of code
that touches them enters :func:`exclusive` first: it takes the model's lock, sets
the mode, and restores the caller's mode in ``finally`` even when the body raises.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["derive_seed", "exclusive", "model_lock", "seeded"]

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
# Walking net.modules() costs ~0.3 ms for GoogLeNet on every call; the tree is read once per
# model instead (gnet's models never change structure after they are built).
_MODULES: weakref.WeakKeyDictionary[nn.Module, tuple[nn.Module, ...]] = weakref.WeakKeyDictionary()


# Dropout masks and captum's noise come from torch's global RNG, which every thread shares.
# Code that seeds it for reproducibility holds this lock, so two sessions cannot reseed each other.
_RNG_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run the block on the global RNG seeded with ``seed``; the caller's RNG state comes back after.

    Holds a process-wide lock for the block: keep it short (one forward pass, not a whole run).
    Always take a model's :func:`exclusive` first, then this, never the other way round.
    """
    devices = [device] if device is not None and device.type == "cuda" else []
    with _RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across processes and runs, unlike ``hash()``).

    Training draws every random choice from such seeds, e.g. ``derive_seed(seed, "augment", epoch, index)``,
    so a choice does not depend on which process or worker makes it, or on what ran before.
    """
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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
        modules = _MODULES.get(net)
        if modules is None:
            modules = _MODULES[net] = tuple(net.modules())
        modes = [m.training for m in modules]
        # nn.Module.train() walks every submodule (~0.5 ms for GoogLeNet): skip it when nothing
        # would change, as for a shared model that stays in eval mode. The probe's budget is tight.
        if any(mode != training for mode in modes):
            net.train(training)
        try:
            yield net
        finally:
            # Restore per submodule: a caller may have mixed modes (e.g. frozen batch norm).
            for m, mode in zip(modules, modes):
                if m.training != mode:
                    m.training = mode
