"""Dataset examples: the one-pass index equals a brute-force ranking, is cached, and ships for the bundled weights."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from gnet.errors import DatasetError
from gnet.inspect import examples
from gnet.inspect.evaluation import fashion_mnist_test
from gnet.inspect.examples import CHANNELS, Example, ExampleIndex, build_index, example_index, module_rows
from gnet.inspect.probe import capture
from gnet.net.layers import BRANCH_POINTS, INCEPTION_MODULES, parse_channel, submodule
from gnet.storage import ASSETS_DIR
from gnet.weights.loader import load
from tests.conftest import make_loaded, use_fake_fashion_mnist

SUBSET = 160  # test images for the brute-force comparison: enough to rank, small enough for CI


def _every_channel() -> list[str]:
    return [f"{b.name}:{c}" for b in BRANCH_POINTS for c in range(b.channels)]


def _brute_force(loaded, data, names: list[str], k: int = 9) -> dict[str, dict[str, np.ndarray]]:
    """Each channel's activations on every image, read from its own branch (not the module's slice), then sorted."""
    targets = [parse_channel(n) for n in names]
    branches = {f"{t.module}.{t.branch}" for t in targets}
    values: dict[str, list[torch.Tensor]] = {b: [] for b in branches}
    with torch.inference_mode():
        for x, _, _ in data.batches(64):
            with capture(loaded.net, {b: submodule(loaded.net, b) for b in branches}) as store:
                loaded.net(x)
            for b in branches:
                values[b].append(store[b])
    ranked = {}
    for name, t in zip(names, targets):
        maps = torch.cat(values[f"{t.module}.{t.branch}"])[:, t.channel].flatten(1).numpy()  # N x HW
        mean, peak, where = maps.mean(1), maps.max(1), maps.argmax(1)
        images = np.arange(len(maps))
        by_mean = np.lexsort((images, -mean))[:k]  # highest first, ties to the lower index
        by_max = np.lexsort((images, -peak))[:k]
        ranked[name] = {"mean_index": by_mean, "mean_value": mean[by_mean], "mean_position": where[by_mean],
                        "max_index": by_max, "max_value": peak[by_max], "max_position": where[by_max]}
    return ranked


def test_the_index_equals_brute_force_for_50_random_channels():
    loaded = load("bundled", "cpu")
    try:
        data = fashion_mnist_test(loaded, limit=SUBSET)
    except DatasetError:
        pytest.skip("Fashion-MNIST is not installed")
    index = build_index(loaded, data, batch_size=48)
    names = random.Random(8).sample(_every_channel(), 50)
    expected = _brute_force(loaded, data, names)
    for name in names:
        row = ExampleIndex.row(parse_channel(name))
        for field, wanted in expected[name].items():
            got = getattr(index, field)[row]
            if field.endswith("value"):
                np.testing.assert_allclose(got, wanted, rtol=1e-5, atol=1e-6, err_msg=f"{name} {field}")
            else:
                np.testing.assert_array_equal(got, wanted, err_msg=f"{name} {field}")


@pytest.fixture
def fake_fmnist(tmp_path, monkeypatch):
    return use_fake_fashion_mnist(tmp_path, monkeypatch, n_test=14)


def test_the_index_does_not_depend_on_the_batch_size_and_round_trips(fake_fmnist):
    loaded = make_loaded()
    data = fashion_mnist_test(loaded)
    a, b = build_index(loaded, data, batch_size=14), build_index(loaded, data, batch_size=3)
    again = ExampleIndex.from_arrays(a.to_arrays())
    for field in ("mean_index", "mean_value", "mean_position", "max_index", "max_value", "max_position"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert np.array_equal(getattr(a, field), getattr(again, field)), field
    assert a.mean_index.shape == (CHANNELS, 9) and CHANNELS == 5488
    assert list(module_rows()) == list(INCEPTION_MODULES)
    assert a.map_sizes == again.map_sizes and a.map_sizes["inception3a"] == (8, 8)
    assert set(a.mean_index.ravel()) <= set(range(14))
    json.dumps(a.to_dict(parse_channel("inception5b.pool_proj:127")))


def test_the_index_is_cached_by_weights_and_data(fake_fmnist, monkeypatch):
    loaded = make_loaded()
    progress: list[float] = []
    first = example_index(loaded, progress=progress.append)
    assert progress[-1] == 1.0
    monkeypatch.setattr(examples, "build_index", lambda *a, **k: pytest.fail("rebuilt a cached index"))
    assert np.array_equal(example_index(loaded).mean_index, first.mean_index)
    assert example_index(make_loaded(seed=1), build=False) is None  # other weights: nothing cached


def test_without_a_dataset_the_error_says_what_to_install(tmp_path, monkeypatch):
    # Fashion-MNIST weights default to its test set (other weights to the samples): the pictures need it.
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="Fashion-MNIST not found"):
        example_index(load("bundled", "cpu"))


def test_a_branch_has_no_single_row():
    with pytest.raises(ValueError, match="branch"):
        ExampleIndex.row(parse_channel("inception4c.5x5"))


def test_an_example_box_is_its_map_cell_in_input_pixels():
    e = Example(index=0, value=1.0, position=(1, 3), map_size=(4, 4))
    assert e.box(64) == (48.0, 16.0, 64.0, 32.0)


def test_the_shipped_index_belongs_to_the_bundled_weights_and_its_values_hold():
    card = json.loads((ASSETS_DIR / f"{examples.ASSET}.json").read_text())
    loaded = load("bundled", "cpu")
    assert card["key"]["weights"] == loaded.weights_hash and card["images"] == 10_000
    try:
        data = fashion_mnist_test(loaded)
    except DatasetError:
        pytest.skip("Fashion-MNIST is not installed")
    index = example_index(loaded, data, build=False)
    assert index is not None, "the shipped index does not match the bundled weights' hash and data"
    # Recompute the best image of a few random channels, both rankings: the stored values and peaks hold.
    for name in random.Random(3).sample(_every_channel(), 12):
        target = parse_channel(name)
        for by in ("mean", "max"):
            best = index.examples(target, by)[0]
            with torch.inference_mode(), capture(loaded.net, {"m": getattr(loaded.net, target.module)}) as store:
                loaded.net(data.inputs([best.index]))
            channel = store["m"][0, target.offset + target.channel]
            value = float(channel.mean() if by == "mean" else channel.max())
            assert value == pytest.approx(best.value, rel=2e-3, abs=1e-3), (name, by)
            if by == "max":
                assert divmod(int(channel.argmax()), channel.shape[1]) == best.position, name
