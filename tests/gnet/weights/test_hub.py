"""Fetching the ImageNet file into the torch hub cache: from a local file:// URL (no internet), and the offline sentence."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from gnet.errors import WeightsNotFoundError
from gnet.weights import hub
from gnet.weights.loader import imagenet_cache_path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache; downloads allowed (the suite sets GNET_OFFLINE)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GNET_OFFLINE", raising=False)
    return imagenet_cache_path()


def _served(tmp_path: Path, data: bytes, *, prefix: str | None = None) -> str:
    """``data`` as a file:// URL named like torch hub files: <name>-<sha256 prefix>.pth."""
    prefix = prefix or hashlib.sha256(data).hexdigest()[:8]
    path = tmp_path / "server" / f"googlenet-{prefix}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def test_download_lands_in_the_hub_cache_with_progress(cache: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    seen: list[tuple[int, int]] = []
    path = hub.download_imagenet(url=_served(tmp_path, data), progress=lambda done, total: seen.append((done, total)),
                                 poll_s=0.001)
    assert path == cache and path.read_bytes() == data
    assert seen[-1] == (hub.IMAGENET_BYTES, hub.IMAGENET_BYTES)  # done
    assert all(0 <= done <= total for done, total in seen)
    assert not list(cache.parent.glob("*.partial"))
    assert hub.download_imagenet(url="file:///nowhere/googlenet-00000000.pth") == path  # present: nothing fetched


def test_a_corrupt_download_leaves_no_file(cache: Path, tmp_path: Path) -> None:
    url = _served(tmp_path, b"not the weights", prefix="1378be20")  # the real file's prefix, other bytes
    with pytest.raises(WeightsNotFoundError, match="corrupt"):
        hub.download_imagenet(url=url)
    assert not cache.exists() and not list(cache.parent.glob("*.partial"))


def test_no_network_gives_the_offline_sentence(cache: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        hub.download_imagenet(url="file:///nowhere/googlenet-1378be20.pth")
    message = str(caught.value)
    assert message == hub.offline_sentence() and "\n" not in message
    assert "needs internet access" in message and cache.name in message and str(cache.parent) in message
    assert not cache.exists()


def test_offline_setting_never_tries(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNET_OFFLINE", "1")

    def no_call(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_call)
    with pytest.raises(WeightsNotFoundError, match="needs internet access"):
        hub.download_imagenet()
