"""The heads' logits over a set: the shipped file matches a recomputation, the disk cache round-trips and
is written atomically, the model is left as it was, and bad folders are named."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import gnet
from gnet import storage
from gnet.heads import logits as headlogits
from gnet.heads.logits import compute_logits, head_logits, read_shipped
from gnet.inspect.evaluation import fashion_mnist_test, image_folder, sample_set
from gnet.net.layers import HEADS
from tests.conftest import make_loaded, modules_with_hooks

RECOMPUTED = 200


def fashion_mnist_or_skip(loaded):
    """The Fashion-MNIST test set; skips where it is not installed, except in CI, where it must be."""
    try:
        return fashion_mnist_test(loaded)
    except gnet.DatasetError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _folder(root, classes=("c0", "c1"), per_class=3, size=40):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_shipped_logits_match_a_recomputation_of_200_images():
    found = read_shipped()
    assert found is not None, "assets/head_logits.npz is missing: run scripts/ship_test_logits.py"
    card, arrays = found
    loaded = gnet.load("bundled", "cpu")
    key = dict(card["key"])
    assert key.pop("weights") == loaded.weights_hash, "the shipped logits belong to other weights"
    data = fashion_mnist_or_skip(loaded)
    assert key == data.key
    assert np.array_equal(arrays["labels"].astype(np.int64), data.labels.numpy())
    indices = np.sort(np.random.default_rng(9).choice(len(data), RECOMPUTED, replace=False))
    with torch.inference_mode():
        out = loaded.net.eval()(data.inputs(indices.tolist()))  # a plain forward, not gnet.heads.logits
    for head in HEADS:
        fresh = getattr(out, head).numpy()
        shipped = arrays[head][indices].astype(np.float32)
        # float16 keeps 11 significant bits: an error of a few units in the last place of each logit.
        np.testing.assert_allclose(shipped, fresh, rtol=2e-3, atol=2e-2, err_msg=head)
        assert (shipped.argmax(1) == fresh.argmax(1)).mean() >= 0.99, head
    assert head_logits(loaded, data).origin == "shipped"


def test_compute_cache_and_progress(cache):
    loaded = make_loaded()
    data = sample_set(loaded)
    seen = []
    first = head_logits(loaded, data, batch_size=7, progress=lambda done, total: seen.append((done, total)))
    assert first.origin == "computed" and len(first) == len(data)
    assert seen[-1] == (len(data), len(data)) and len(seen) == -(-len(data) // 7)
    with torch.inference_mode():
        direct = loaded.net(data.inputs(list(range(len(data)))))
    for head in HEADS:
        np.testing.assert_allclose(first.logits[head], getattr(direct, head).numpy(), rtol=1e-5, atol=1e-5)
    again = head_logits(loaded, data, progress=lambda *_: pytest.fail("recomputed although cached"))
    assert again.origin == "disk cache"
    for head in HEADS:
        np.testing.assert_array_equal(again.logits[head], first.logits[head])
    assert not modules_with_hooks(loaded.net) and not loaded.net.training


def test_features_are_the_pooled_outputs(cache):
    loaded = make_loaded()
    data = sample_set(loaded)
    got = compute_logits(loaded, data, features=("maxpool2", "inception5b"))
    x = data.inputs([0, 1])
    with torch.inference_mode():
        net = loaded.net
        stem = h = net.maxpool2(net.conv3(net.conv2(net.maxpool1(net.conv1(x)))))
        h = net.inception4a(net.maxpool3(net.inception3b(net.inception3a(h))))
        h = net.inception4e(net.inception4d(net.inception4c(net.inception4b(h))))
        h = net.inception5b(net.inception5a(net.maxpool4(h)))
    np.testing.assert_allclose(got["features/inception5b"][:2], h.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["features/maxpool2"][:2], stem.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    cached = head_logits(loaded, data, features=("inception5b",))
    assert cached.origin == "computed" and set(cached.features) == {"inception5b"}
    assert head_logits(loaded, data, features=("inception5b",)).origin == "disk cache"


def test_an_interrupted_computation_writes_nothing(cache):
    loaded = make_loaded()
    data = sample_set(loaded)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        head_logits(loaded, data, batch_size=4, progress=stop)
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
    assert not loaded.net.training and not modules_with_hooks(loaded.net)


def test_a_failed_forward_leaves_the_model_as_it_was(cache, monkeypatch):
    loaded = make_loaded()
    loaded.net.train()

    def boom(x):
        raise RuntimeError("boom")

    monkeypatch.setattr(loaded.net.inception4e, "forward", boom)
    with pytest.raises(RuntimeError):
        compute_logits(loaded, sample_set(loaded), features=("inception4a", "inception5b"))
    assert loaded.net.training and not modules_with_hooks(loaded.net)


def test_stale_shipped_file_is_ignored(cache, tmp_path, monkeypatch):
    loaded = make_loaded()
    data = image_folder(loaded, _folder(tmp_path / "set"))  # every image labelled, as a shipped set must be
    arrays = compute_logits(loaded, data)
    monkeypatch.setattr(storage, "ASSETS_DIR", tmp_path)
    labels = data.labels.numpy()
    headlogits.write_shipped(arrays, labels, {"weights": "0" * 64, **data.key}, {})
    assert (tmp_path / "head_logits.npz").is_file()
    assert head_logits(loaded, data).origin == "computed"  # other weights' hash: not used
    headlogits.write_shipped(arrays, labels, {"weights": loaded.weights_hash, **data.key}, {})
    assert head_logits(loaded, data).origin == "shipped"  # the same file, for these weights: before the cache


def test_a_broken_image_in_a_folder_is_named(cache, tmp_path):
    loaded = make_loaded()
    root = _folder(tmp_path / "set")
    (root / "c1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(gnet.DatasetError, match="broken.png"):
        head_logits(loaded, image_folder(loaded, root))
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_an_unwritable_cache_still_gives_the_result(tmp_path, monkeypatch):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("GNET_CACHE_DIR", str(blocked))
    loaded = make_loaded()
    with pytest.warns(UserWarning, match="GNET_CACHE_DIR"):
        found = head_logits(loaded, sample_set(loaded))
    assert found.origin == "computed" and len(found) == len(sample_set(loaded))
