"""Exclusive, mode-restoring access to a model shared between threads.

Streamlit's ``st.cache_resource`` hands one model object to every session and thread.
Hooks and ``train()``/``eval()`` are state on that object, so every piece of code
that touches them enters :func:`exclusive` first: it takes the model's lock, sets
the mode, and restores the caller's mode in ``finally`` even when the body raises.
"""

from __future__ import annotations

import hashlib
import operator
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["derive_seed", "exclusive", "model_lock", "seeded"]

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
# Modules whose forward never reads ``training``: their flag changes no output. A class of one's
# own says so with ``reads_training = False`` (gnet.net.model's blocks do).
_MODE_FREE = (
    nn.modules.conv._ConvNd, nn.Linear, nn.Identity, nn.Flatten, nn.ReLU, nn.LocalResponseNorm, nn.Sequential,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
)
# Per model, read once (gnet's models never change structure after they are built): every submodule,
# and the ones whose mode matters (batch norm, dropout: 62 of GoogLeNet's 302). Reading
# 303 flags twice cost ~0.4 ms of an analysis after the forward had evicted them from the caches.
_MODULES: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[nn.Module, ...], tuple[nn.Module, ...]]] = (
    weakref.WeakKeyDictionary()
)
_TRAINING = operator.attrgetter("training")


def _modules(net: nn.Module) -> tuple[tuple[nn.Module, ...], tuple[nn.Module, ...]]:
    """All of ``net``'s modules, and the ones whose ``training`` flag changes what they compute (with the root)."""
    found = _MODULES.get(net)
    if found is None:
        # Without ``net`` itself: a value that held its key would keep the model alive for ever.
        below = tuple(m for m in net.modules() if m is not net)
        watched = tuple(m for m in below if not (isinstance(m, _MODE_FREE) or
                                                 getattr(m, "reads_training", True) is False))
        found = _MODULES[net] = (below, watched)
    below, watched = found
    return (net, *below), (net, *watched)

# Dropout masks and captum's noise come from torch's global RNG, which every thread shares.
# Code that seeds it for reproducibility holds this lock, so two sessions cannot reseed each other.
_RNG_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run the block on the global RNG seeded with ``seed``; the caller's RNG state comes back after.

    Holds a process-wide lock for the block: keep it short (one forward pass, not a whole run).
    Always take a model's :func:`exclusive` first, then this, never the other way round.
    """
    cuda = device is not None and device.type == "cuda"
    with _RNG_LOCK, torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        # Only the generators a forward on ``device`` draws from. torch.manual_seed also queues a
        # seed for every accelerator type torch knows (CUDA, XPU, MTIA), each lazy call formatting
        # a stack trace: ~0.8 ms per call here without any, more than once per training image.
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        elif device is not None and device.type == "mps":
            torch.mps.manual_seed(seed)
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
    """Hold ``net``'s lock and put it in train or eval mode; restore the modes on exit.

    Every module's mode is restored when this changed it. When it did not (a shared model already
    in the mode asked for, the common case), only the modes that matter are read, and restored on
    exit if the body changed them: the root's, and those of the modules that read their flag
    (batch norm, dropout, any module not known to ignore it). A body that flips the flag of a
    module that ignores it (a convolution, a ReLU, a container) leaves it flipped: no output changes.
    """
    with model_lock(net):
        every, watched = _modules(net)
        watched_modes = list(map(_TRAINING, watched))
        modes = None
        # nn.Module.train() walks every submodule (~0.5 ms for GoogLeNet): skip it when nothing
        # would change. The probe's budget is tight.
        if watched_modes.count(training) != len(watched_modes):
            modes = list(map(_TRAINING, every))  # a caller may have mixed modes (e.g. frozen batch norm)
            net.train(training)
        try:
            yield net
        finally:
            if modes is not None:
                for m, mode in zip(every, modes):
                    m.training = mode
            elif list(map(_TRAINING, watched)) != watched_modes:
                for m, mode in zip(watched, watched_modes):
                    m.training = mode
