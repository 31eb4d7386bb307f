"""The Heads page's "Your own classes": the three heads' last layers retrained on an uploaded zip, per session.

Nothing here is cached: a fit belongs to the session that asked for it. The overlay file is
written with the uploads (:func:`dashboard.cache.models.checkpoint_file`), so the sidebar can
stack it as ``SOURCE+labels=PATH`` and the shared model cache loads it like any weights.
torch and the rest of gnet are imported inside the function.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard.cache.models import checkpoint_file, model

__all__ = ["Stopped", "retrain_heads"]


class Stopped(Exception):
    """The fit was stopped by its progress callback (the page's Stop button): nothing was kept."""


def retrain_heads(
    weights: str, device: str, name: str, archive: bytes, progress: Callable[[float], bool] | None = None
) -> tuple[str, dict[str, Any], bytes]:
    """(overlay path, its card, its bytes) for the heads of ``weights`` retrained on the zip ``archive`` (named ``name``).

    Raises gnet.DatasetError (bad classes, unreadable images, a hostile zip), gnet.CheckpointError, and
    :class:`Stopped` when ``progress`` returns False.
    """
    from gnet.data.archive import class_tree
    from gnet.heads.retrain import retrain_heads as fit
    from gnet.inspect.attributions import Stopped as StoppedFit
    from gnet.inspect.evaluation import class_folder
    from gnet.weights.overlay import save_labels_overlay

    loaded = model(weights, device)
    with tempfile.TemporaryDirectory(prefix="gnet-upload-") as tmp:
        upload = Path(tmp, Path(name).name or "classes.zip")
        upload.write_bytes(archive)
        with class_tree(upload) as root:
            data = class_folder(loaded, root)
            data.name = f"{upload.name} ({len(data):,} images)"
            try:
                result = fit(loaded, data, progress=progress, command="the app's Heads page")
            except StoppedFit as e:
                raise Stopped(str(e)) from None
        written = save_labels_overlay(result.state_dict, result.card, Path(tmp, "labels.pt"))
        content = written.read_bytes()
    # named by its content: the uploads' digest cache is keyed by this id alone
    return checkpoint_file(f"labels-{hashlib.sha256(content).hexdigest()}", content), result.card, content
