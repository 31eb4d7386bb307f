"""Fetching torchvision's ImageNet GoogLeNet file into the torch hub cache, with progress.

The download is torchvision's own: ``torch.hub.download_url_to_file`` (what
``GoogLeNet_Weights.IMAGENET1K_V1.get_state_dict()`` calls) into ``torch.hub.get_dir()/checkpoints``,
where :func:`gnet.weights.loader.load` looks for it. It writes to a temporary ``.partial`` file next to
the destination and renames it into place only when complete and its sha256 starts with the
prefix in the file's name, so a broken download never leaves a broken file. Progress is read
from the size of that ``.partial`` file while the download runs in a thread, so the caller
(the app's sidebar) can draw it without patching torch.hub's own tqdm bar.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import GoogLeNet_Weights

from ..errors import WeightsNotFoundError
from .loader import OFFLINE_ENV, imagenet_cache_path

__all__ = ["IMAGENET_BYTES", "IMAGENET_URL", "download_imagenet", "offline_sentence"]

IMAGENET_URL: str = GoogLeNet_Weights.IMAGENET1K_V1.url
# torchvision records the size in MB; it only scales the progress bar.
IMAGENET_BYTES = round(GoogLeNet_Weights.IMAGENET1K_V1.meta["_file_size"] * 1024 * 1024)
_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's convention: name-<sha256 prefix>.ext

Progress = Callable[[int, int], None]  # (bytes so far, bytes expected)


def offline_sentence() -> str:
    """What to do without internet: the file and the folder to copy it into."""
    path = imagenet_cache_path()
    return (
        f"Downloading the ImageNet weights needs internet access: copy {path.name} into {path.parent} "
        "(the torch hub cache) by hand, then reload."
    )


def download_imagenet(*, progress: Progress | None = None, url: str | None = None, poll_s: float = 0.2) -> Path:
    """Download the ImageNet file into the torch hub cache (a no-op when it is there); return its path.

    ``progress(done, total)`` is called from the calling thread every ``poll_s`` seconds.
    ``url`` defaults to torchvision's; its file name's hash prefix is checked. Raises
    :class:`WeightsNotFoundError` with :func:`offline_sentence` when ``$GNET_OFFLINE`` is set
    or the download fails.
    """
    dst = imagenet_cache_path()
    if dst.exists():
        return dst
    if os.environ.get(OFFLINE_ENV):
        raise WeightsNotFoundError(offline_sentence())
    url = url or IMAGENET_URL
    found = _HASH_IN_NAME.search(Path(urlparse(url).path).name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    failure: list[BaseException] = []

    def fetch() -> None:
        try:
            torch.hub.download_url_to_file(url, str(dst), hash_prefix=found.group(1) if found else None, progress=False)
        except BaseException as e:  # reported to the caller's thread below
            failure.append(e)

    worker = threading.Thread(target=fetch, name="gnet-imagenet-download", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll_s)
        if progress is not None and worker.is_alive():
            progress(_partial_bytes(dst), IMAGENET_BYTES)
    if failure:
        if isinstance(failure[0], RuntimeError) and "hash" in str(failure[0]):
            raise WeightsNotFoundError(
                f"The downloaded {dst.name} was corrupt (its sha256 does not match its name) and was discarded: try again."
            ) from None
        raise WeightsNotFoundError(offline_sentence()) from None
    if progress is not None:
        progress(IMAGENET_BYTES, IMAGENET_BYTES)
    return dst


def _partial_bytes(dst: Path) -> int:
    """Bytes written so far into torch.hub's temporary ``<dst>.<uuid>.partial`` file."""
    total = 0
    for partial in dst.parent.glob(f"{dst.name}.*.partial"):
        try:
            total += partial.stat().st_size
        except FileNotFoundError:  # renamed into place between the listing and the stat
            pass
    return total
