"""What :func:`gnet.analyze` computes after its forward pass, as compiled loops (numba).

Written by hand because no library call does it in one pass. The statistics of the 36 branches are
per-channel sums, sums of squares and non-zero counts, folded into per-branch means, spreads, zero
fractions and energy shares, and each branch's most active channels; the heads' are softmax, top-k,
entropy and KL divergence to main. As torch and numpy calls they took about sixty small operations
after every forward, and right after a forward each of them costs several microseconds whatever its
size (cold caches and branch predictors): at the bundled net's 64 px that was more than the 8 % of
the forward that analyze may add (issue 25). A compiled loop reads each output once, in the order it
lies in memory (``bench/bench_speed.py --rows analyze``).

numba is imported with this module, which :mod:`gnet.inspect.analysis` imports on the first
analysis, so ``gnet --help`` and ``import gnet`` stay light. The compiled code is cached on disk
(``cache=True``): the first analysis after an install compiles it (about 3 s), later processes load it (about 0.4 s).
The loops run on the calling thread only (no ``parallel``): a thread pool of numba's beside
torch's OpenMP team would fight it for the cores (see ``bench/bench_threads.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import torch
from torch import Tensor

__all__ = ["statistics"]

_TINY = np.finfo(np.float64).tiny


@numba.njit(cache=True, nogil=True)
def _channel_sums(out, channels_last, s1, s2, nonzero):
    """Per-channel sum, sum of squares and non-zero count of one module output, in float64.

    ``out`` is H x W x C when ``channels_last`` (channels adjacent in memory: the inner loop runs over
    them and vectorises), else C x H x W (each channel's plane is contiguous).
    """
    if channels_last:
        h, w, c = out.shape
        for i in range(h):
            for j in range(w):
                row = out[i, j]
                for k in range(c):
                    v = np.float64(row[k])
                    s1[k] += v
                    s2[k] += v * v
                    nonzero[k] += 1.0 if v != 0.0 else 0.0
    else:
        c = out.shape[0]
        for k in range(c):
            plane = out[k].ravel()
            a = 0.0
            e = 0.0
            z = 0.0
            for v32 in plane:
                v = np.float64(v32)
                a += v
                e += v * v
                z += 1.0 if v != 0.0 else 0.0
            s1[k] = a
            s2[k] = e
            nonzero[k] = z


@numba.njit(cache=True, nogil=True)
def _largest(values, keep, index, largest):
    """The ``keep`` largest ``values`` in descending order, ties in index order, into ``index`` and ``largest``.

    An insertion into ``keep`` slots, which rejects most values with one comparison.
    """
    filled = 0
    for k in range(values.shape[0]):
        v = values[k]
        if filled == keep and v <= largest[keep - 1]:
            continue
        pos = filled if filled < keep else keep - 1
        while pos > 0 and largest[pos - 1] < v:
            largest[pos] = largest[pos - 1]
            index[pos] = index[pos - 1]
            pos -= 1
        largest[pos] = v
        index[pos] = k
        if filled < keep:
            filled += 1


@numba.njit(cache=True, nogil=True)
def _statistics(outs, channels_last, widths, per_module, top_k, tiny):
    branches = widths.shape[0]
    rows = np.empty((branches, 5))
    top = np.full((branches, top_k), -1, np.int64)
    top_sums = np.zeros((branches, top_k))
    first = 0  # the module's first branch
    for m in range(len(outs)):
        out = outs[m]
        c = out.shape[2] if channels_last[m] else out.shape[0]
        hw = out.size // c
        s1 = np.zeros(c)
        s2 = np.zeros(c)
        nonzero = np.zeros(c)
        _channel_sums(out, channels_last[m], s1, s2, nonzero)
        start = 0  # the branch's first channel in its module
        total = 0.0
        for b in range(first, first + per_module):
            width = widths[b]
            a = 0.0
            e = 0.0
            z = 0.0
            for k in range(start, start + width):
                a += s1[k]
                e += s2[k]
                z += nonzero[k]
            n = width * hw
            mean = a / n
            rows[b, 0] = mean
            rows[b, 1] = np.sqrt(max(e / n - mean * mean, 0.0) * (n / max(n - 1, 1)))  # unbiased, as torch's std
            rows[b, 2] = 1.0 - z / n
            rows[b, 3] = e
            total += e
            keep = min(width, top_k)
            _largest(s1[start : start + width], keep, top[b], top_sums[b])
            for q in range(keep):
                top_sums[b, q] /= hw
            start += width
        for b in range(first, first + per_module):  # a dead module (energy 0) gets shares of 0, not 0 / 0
            rows[b, 4] = rows[b, 3] / max(total, tiny)
        first += per_module
    return rows, top, top_sums


@numba.njit(cache=True, nogil=True)
def _heads(logits, k):
    heads = len(logits)
    classes = logits[0].shape[0]
    log_probs = np.empty((heads, classes))
    probs = np.empty((heads, classes))
    top = np.empty((heads, k), np.int64)
    top_probs = np.empty((heads, k))
    entropy = np.zeros(heads)
    kl = np.zeros(heads)
    for i in range(heads):
        z = logits[i]
        peak = -np.inf
        for j in range(classes):
            peak = max(peak, np.float64(z[j]))
        total = 0.0
        for j in range(classes):
            total += np.exp(np.float64(z[j]) - peak)
        log_total = np.log(total)
        for j in range(classes):
            log_probs[i, j] = np.float64(z[j]) - peak - log_total
            probs[i, j] = np.exp(log_probs[i, j])
            entropy[i] -= probs[i, j] * log_probs[i, j]
        _largest(probs[i], k, top[i], top_probs[i])
    for i in range(heads):  # KL(main || head): how much the head's distribution misses main's (head 0)
        for j in range(classes):
            kl[i] += probs[0, j] * (log_probs[0, j] - log_probs[i, j])
    return probs.astype(np.float32), top, top_probs, entropy, kl


@numba.njit(cache=True, nogil=True)
def _everything(outs, layouts, widths, per_module, top_k, logits, k, tiny):
    rows, top, top_means = _statistics(outs, layouts, widths, per_module, top_k, tiny)
    probs, classes, class_probs, entropy, kl = _heads(logits, k)
    return rows, top, top_means, probs, classes, class_probs, entropy, kl


def _view(out: Tensor) -> tuple[np.ndarray, bool]:
    """A 1 x C x H x W (or C x H x W) CPU tensor as a C-contiguous float32 array, without a copy where its layout
    allows: H x W x C for channels_last (how :func:`gnet.load` leaves a CPU net), else C x H x W."""
    a = (out if out.dtype == torch.float32 else out.float()).numpy()
    a = a[0] if a.ndim == 4 else a
    hwc = a.transpose(1, 2, 0)
    if hwc.flags.c_contiguous:
        return hwc, True
    return np.ascontiguousarray(a), False


def statistics(outputs: Sequence[Tensor], widths: np.ndarray, per_module: int, top_channels: int, logits: Tensor,
               top_classes: int) -> tuple[np.ndarray, ...]:
    """Everything analyze reports of its forward, from its CPU tensors, in one compiled call.

    ``outputs`` are the Inception modules' outputs (branch ``widths`` in concatenation order, ``per_module``
    branches a module), ``logits`` the heads' (heads x C, main first). Returns, per branch, a branches x 5
    float64 array (mean, std, zero fraction, energy, energy share in its module), its ``top_channels``
    most active channels (index within the branch; -1 past a narrower branch's width) and their mean
    activations; then, per head, its probabilities (heads x C, float32), its ``top_classes`` classes (ties in
    class order) and their probabilities, its entropy and its KL divergence from main. In float64 inside: the
    KL of two close heads is a small difference of large terms, which float32 gets wrong in its fourth digit.
    """
    views, layouts = zip(*(_view(out) for out in outputs))
    z = (logits if logits.dtype == torch.float32 else logits.float()).numpy()
    return _everything(tuple(views), np.array(layouts), widths, per_module, top_channels, z, top_classes, _TINY)
