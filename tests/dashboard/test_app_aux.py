"""The app with distilled aux heads stacked on the weights, and the ImageNet download button (AppTest, no browser)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torchvision.models import googlenet as tv_googlenet

import gnet
from dashboard.cache import models
from gnet.weights import hub
from gnet.weights.loader import imagenet_cache_path
from gnet.weights.sources import with_overlay
from tests.conftest import write_test_overlay

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT_S = 300


@pytest.fixture
def fresh_models():
    """The models cached by earlier tests are dropped before and after (these tests change the hub cache)."""
    models.model.clear()
    yield
    models.model.clear()


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_models) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GNET_WEIGHTS", "imagenet")
    return imagenet_cache_path()


def test_offline_the_download_button_says_what_to_copy_where(empty_hub: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    at.button(key="imagenet_download").click().run()
    errors = [e.value for e in at.sidebar.error]
    assert errors == [hub.offline_sentence()]
    assert empty_hub.name in errors[0] and str(empty_hub.parent) in errors[0] and "internet" in errors[0]
    assert not empty_hub.exists()


def test_the_download_button_fetches_the_file_and_the_app_uses_it(
    empty_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GNET_OFFLINE")
    served = tmp_path / "served.pth"
    torch.save(tv_googlenet(weights=None, aux_logits=True, init_weights=True).state_dict(), served)
    prefix = hashlib.sha256(served.read_bytes()).hexdigest()[:8]
    served = served.rename(tmp_path / f"googlenet-{prefix}.pth")
    monkeypatch.setattr(hub, "IMAGENET_URL", served.as_uri())  # a local file: never the internet
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert at.error  # before: the page says the weights are missing
    at.button(key="imagenet_download").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert empty_hub.read_bytes() == served.read_bytes()
    assert "imagenet_download" not in [b.key for b in at.button]  # the file is there: no button
    assert any("ImageNet-1K" in e.label for e in at.sidebar.expander)


def test_heads_page_shows_distilled_aux_heads_and_the_difference_from_the_paper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_models
) -> None:
    overlay = write_test_overlay(gnet.load("bundled", "cpu"), tmp_path / "aux_heads.pt")
    monkeypatch.setenv("GNET_WEIGHTS", with_overlay("bundled", overlay))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("routes/heads.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    notes = " ".join(i.value for i in at.info)
    assert "distilled" in notes and "aux_heads.pt" in notes and "jointly" in notes and "0.3" in notes
    assert not at.warning  # the heads are not reported as untrained
    assert any("distilled aux heads" in e.label for e in at.sidebar.expander)
