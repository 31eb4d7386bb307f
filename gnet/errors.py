"""Errors a user can cause, each carrying one sentence they can act on.

The CLI prints ``str(error)`` and exits 2; the dashboard shows it with ``st.error``.
Anything that is not a :class:`GNetError` is a bug and may show a traceback.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DatasetError",
    "DesignError",
    "DeviceError",
    "GNetError",
    "ImageError",
    "TargetError",
    "WeightsError",
    "WeightsNotFoundError",
]


class GNetError(Exception):
    """Base class of every error caused by user input rather than by a bug."""


class ImageError(GNetError, ValueError):
    """The input is not a decodable, reasonably sized image."""


class WeightsError(GNetError):
    """A weights source cannot be used."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """The weights file is not where it should be."""


class CheckpointError(WeightsError, ValueError):
    """A file exists but is not a checkpoint this model can load (with the reasons)."""


class DatasetError(GNetError, FileNotFoundError):
    """A dataset is missing or malformed."""


class DeviceError(GNetError, ValueError):
    """The requested device does not exist or is not available here."""


class TargetError(GNetError, ValueError):
    """A module, branch, channel, head or class that the network does not have."""


class DesignError(GNetError, ValueError):
    """A design-lab variant that cannot be built or measured as asked (size, option, memory)."""
