"""dashboard.cache's uploads: checkpoint files on disk and decoded images, both bounded."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path

import pytest
from PIL import Image

import gnet
from dashboard.cache import images, models
from gnet.data.images import DISPLAY_SIDE


def test_checkpoint_uploads_live_in_a_private_folder(tmp_path):
    folder = models.upload_dir()
    assert folder.is_dir() and oct(folder.stat().st_mode & 0o777) == "0o700"
    data = os.urandom(4096)
    path = Path(models.checkpoint_file(str(uuid.uuid4()), data))
    assert path.parent == folder and path.read_bytes() == data
    assert path.name == f"upload-{hashlib.sha256(data).hexdigest()[:16]}.pt"


def test_an_evicted_upload_chosen_again_is_written_again():
    data = os.urandom(4096)
    file_id = str(uuid.uuid4())
    path = Path(models.checkpoint_file(file_id, data))
    path.unlink()  # evicted to keep the folder within its bound
    assert Path(models.checkpoint_file(file_id, data)) == path and path.read_bytes() == data
    assert not list(path.parent.glob("*.part"))  # written through a temporary file, nothing left beside it


def test_failed_checkpoint_write_leaves_nothing(monkeypatch):
    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        models.checkpoint_file(str(uuid.uuid4()), os.urandom(64))
    assert not list(models.upload_dir().glob("*.part"))


def test_checkpoint_uploads_are_bounded_by_bytes(monkeypatch):
    monkeypatch.setattr(models, "UPLOADS_MAX_BYTES", 10_000)
    paths = [Path(models.checkpoint_file(str(uuid.uuid4()), os.urandom(4_000))) for _ in range(5)]
    kept = sorted(models.upload_dir().glob("upload-*.pt"))
    assert sum(p.stat().st_size for p in kept) <= 10_000
    assert paths[-1] in kept and paths[0] not in kept  # the oldest go first, the newest stays


def test_uploads_are_decoded_once_per_file_id():
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(png, format="PNG")
    file_id = str(uuid.uuid4())
    first = images.decode_bytes(file_id, "red.png", png.getvalue())
    assert first.image.size == (8, 8) and first.name == "red.png"
    assert images.decode_bytes(file_id, "red.png", b"not read again") is first  # the id is the key, not the bytes


def test_a_big_upload_is_kept_at_display_size_only():
    """A 35-megapixel JPEG is decoded at a reduced scale and kept at DISPLAY_SIDE pixels at most."""
    big = Image.new("RGB", (7000, 5000), (30, 60, 90))
    jpeg = io.BytesIO()
    big.save(jpeg, format="JPEG", quality=80)
    decoded = images.decode_bytes(str(uuid.uuid4()), "phone.jpg", jpeg.getvalue())
    assert max(decoded.image.size) == DISPLAY_SIDE and decoded.image.size == (1024, 731)
    assert max(decoded.preview.size) <= 320
    kept = len(decoded.image.tobytes()) + len(decoded.preview.tobytes())
    assert kept <= DISPLAY_SIDE * DISPLAY_SIDE * 3 * 1.1  # not the 105 MB of the full-size RGB


@pytest.mark.parametrize(
    ("size", "kept", "preview"),
    [((3000, 8), (1024, 3), (320, 40)), ((8, 3000), (3, 1024), (40, 320)), ((1, 1), (1, 1), (1, 1))],
)
def test_extreme_aspect_ratios_get_a_drawable_preview(size, kept, preview):
    png = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(png, format="PNG")
    decoded = images.decode_bytes(str(uuid.uuid4()), "strip.png", png.getvalue())
    assert decoded.image.size == kept and decoded.preview.size == preview


def test_upload_errors_name_the_file():
    with pytest.raises(gnet.ImageError, match="^'notes.png' is not an image"):
        images.decode_bytes(str(uuid.uuid4()), "notes.png", b"plain text")
