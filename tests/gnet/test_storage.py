"""gnet.storage: atomic writes, and a disk cache that is keyed, tolerant of damage, and bounded."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from gnet import storage


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    path = storage.atomic_write(tmp_path / "a.bin", b"old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        storage.atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_cache_round_trip_keyed_by_every_field():
    key = {"weights": "abc", "data": "fashion-mnist-test", "n": 10}
    assert storage.load_cached("logits", key) is None
    storage.save_cached("logits", key, {"x": np.arange(5, dtype=np.float16)})
    np.testing.assert_array_equal(storage.load_cached("logits", key)["x"], np.arange(5, dtype=np.float16))
    assert storage.load_cached("logits", {**key, "n": 11}) is None
    assert storage.load_cached("examples", key) is None


def test_a_damaged_cache_file_counts_as_missing(cache):
    key = {"weights": "abc"}
    path = storage.save_cached("logits", key, {"x": np.zeros(3)})
    path.write_bytes(path.read_bytes()[:20])
    assert storage.load_cached("logits", key) is None


def test_the_cache_is_pruned_to_its_bound_oldest_first(monkeypatch):
    paths = []
    for i in range(4):
        paths.append(storage.save_cached("kind", {"i": i}, {"x": np.zeros(50_000)}))
        past = time.time() - 100 + i  # distinct use times, oldest first
        os.utime(paths[-1], (past, past))
    storage.load_cached("kind", {"i": 0})  # used again: now the most recent
    monkeypatch.setenv(storage.CACHE_MAX_ENV, str(2.5 * 400_000 / (1 << 20)))  # room for two files of ~400 KB
    storage.prune_cache()
    left = {p for p in paths if p.exists()}
    assert left == {paths[0], paths[3]}
