"""Choosing where the model runs: CUDA, then Apple MPS, then CPU.

``--device`` on the CLI and the ``GNET_DEVICE`` environment variable override the choice.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .errors import DeviceError

__all__ = ["DEVICE_ENV", "available_memory", "describe_device", "hardware", "memory_format", "resolve_device"]

DEVICE_ENV = "GNET_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Return the requested device, or the best available one when ``name`` is None/"auto".

    Raises :class:`DeviceError` when the requested device is unknown or not available here.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"Unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"Device {name!r} was requested but CUDA is not available here: use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"Device {name!r} was requested but Apple MPS is not available here: use --device cpu.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps.")
    return device


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout a loaded net's weights take on ``device`` (:func:`gnet.load` applies it).

    channels_last on a CPU: with channels_last weights oneDNN runs every convolution, forward and
    backward, in that layout, and GoogLeNet's eval forward took 0.77x and 0.80x the time of the
    contiguous net's at 64 px (bundled net) and 0.63x at 224 px (random net), one thread, in two
    runs of ``bench/bench_speed.py --rows layout``. The standard contiguous layout elsewhere: GPUs
    were not measured. Setting it explicitly also keeps a net's layout independent of how its file
    stored the weights (a 1x1 kernel saved channels_last is also "contiguous", and made its
    convolution's output channels_last).
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA, MPS), so that a timing covers it; on a CPU ops finish
    before they return, and this does nothing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device`` (None where it cannot be told): the GPU's free memory,
    or the kernel's MemAvailable (Linux; psutil is not a dependency, /proc is enough)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    return None


def describe_device(device: torch.device) -> str:
    """A short human description, with the GPU's name when there is one."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def hardware() -> str:
    """A one-line description of the CPU and torch build, recorded with training runs and benchmarks."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
