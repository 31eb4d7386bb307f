"""Knock-outs: the hook equals zeroing by hand, no knock-out is the intact net, the fan-out equals separate passes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gnet.data.fashion_mnist import FASHION_MNIST_CLASSES
from gnet.errors import DatasetError, TargetError
from gnet.inspect import ablation
from gnet.inspect.ablation import BranchImportance, ablate, branch_importance, importance
from gnet.inspect.evaluation import fashion_mnist_test, sample_set
from gnet.inspect.probe import every_branch_knocked_out, knocked_out
from gnet.net.layers import BRANCH_POINTS, HEADS, parse_channel
from gnet.storage import ASSETS_DIR
from gnet.weights.loader import load
from tests.conftest import make_loaded, modules_with_hooks, use_fake_fashion_mnist


def _x(seed: int = 0, n: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _forward_zeroing(net, x: torch.Tensor, zero: dict[str, list[int]]):
    """GoogLeNet's forward written out, zeroing the listed channels of a module's output by hand."""

    def block(name: str, h: torch.Tensor) -> torch.Tensor:
        out = getattr(net, name)(h)
        if name in zero:
            out = out.clone()
            out[:, zero[name]] = 0
        return out

    h = net.maxpool2(net.lrn2(net.conv3(net.conv2(net.lrn1(net.maxpool1(net.conv1(x)))))))
    h = net.maxpool3(block("inception3b", block("inception3a", h)))
    h = block("inception4a", h)
    aux1 = net.aux1(h)
    h = block("inception4d", block("inception4c", block("inception4b", h)))
    aux2 = net.aux2(h)
    h = net.maxpool4(block("inception4e", h))
    h = block("inception5b", block("inception5a", h))
    main = net.fc(net.dropout(torch.flatten(net.avgpool(h), 1)))
    return {"main": main, "aux1": aux1, "aux2": aux2}


@pytest.mark.parametrize(
    ("knockouts", "zero"),
    [
        (["inception4c.5x5"], {"inception4c": list(range(128 + 256, 128 + 256 + 64))}),
        (["inception4d.pool_proj:3", "inception3a.1x1:7"], {"inception4d": [112 + 288 + 64 + 3], "inception3a": [7]}),
        ([f"inception4a.{b}" for b in ("1x1", "3x3", "5x5", "pool_proj")], {"inception4a": list(range(512))}),
    ],
)
def test_the_hook_equals_zeroing_the_slice_by_hand(tiny_loaded, knockouts, zero):
    net, x = tiny_loaded.net, _x()
    with torch.inference_mode():
        expected = _forward_zeroing(net, x, zero)
        with knocked_out(net, [parse_channel(k) for k in knockouts]):
            out = net(x)
    for head in HEADS:
        assert torch.equal(getattr(out, head), expected[head]), head
    result = ablate(tiny_loaded, x, knockouts)
    for head in HEADS:
        assert torch.equal(result.probs[head], F.softmax(expected[head][0], -1)), head
    assert result.knockouts == tuple(knockouts)


def test_knocking_out_nothing_is_the_intact_net_bit_for_bit(tiny_loaded):
    net, x = tiny_loaded.net, _x(1)
    with torch.inference_mode():
        plain = net(x)
        with knocked_out(net, []):
            hooked = net(x)
    result = ablate(tiny_loaded, x)
    for head in HEADS:
        assert torch.equal(getattr(hooked, head), getattr(plain, head))
        assert torch.equal(result.probs[head], F.softmax(getattr(plain, head)[0], -1))
        assert [p.index for p in result.top[head]] == torch.topk(result.probs[head], 5).indices.tolist()
    change = result.change(result)
    assert all(not c["top1_changed"] and c["total_variation"] == 0 for c in change.values())


def test_a_knockout_after_aux1_leaves_aux1_alone_and_moves_main(tiny_loaded):
    x = _x(2)
    intact = ablate(tiny_loaded, x)
    knocked = ablate(tiny_loaded, x, ["inception4c.3x3"])
    change = knocked.change(intact)
    assert change["aux1"]["total_variation"] == 0.0
    assert change["main"]["total_variation"] > 0.0 and change["aux2"]["total_variation"] > 0.0
    json.dumps({"k": knocked.to_dict(), "c": change})


def test_hooks_are_removed_even_when_the_forward_fails(tiny_loaded):
    net = tiny_loaded.net
    with pytest.raises(RuntimeError):
        with knocked_out(net, [parse_channel("inception4c.5x5")]):
            net(torch.randn(1, 5, 64, 64))  # wrong channel count
    with pytest.raises(RuntimeError):
        with every_branch_knocked_out(net, 1):
            net(torch.randn(1, 5, 64, 64))
    assert not modules_with_hooks(net)
    ablate(tiny_loaded, _x(), ["inception3b.3x3"])
    assert not modules_with_hooks(net)


def test_bad_knockouts_name_the_valid_choices(tiny_loaded):
    with pytest.raises(TargetError, match="choose one of 1x1, 3x3, 5x5, pool_proj"):
        ablate(tiny_loaded, _x(), ["inception4c.7x7"])
    with pytest.raises(TargetError, match="channels 0 to 63"):
        ablate(tiny_loaded, _x(), ["inception4c.5x5:64"])


def test_the_fan_out_equals_36_separate_knocked_out_forwards(tiny_loaded):
    net, x, n = tiny_loaded.net, _x(3, n=2), 2
    with torch.inference_mode():
        with every_branch_knocked_out(net, n):
            fanned = net(x)
        separate = [net(x)]
        for p in BRANCH_POINTS:
            with knocked_out(net, [parse_channel(p.name)]):
                separate.append(net(x))
    blocks = {"aux1": 13, "aux2": 25, "main": 37}
    for head, count in blocks.items():
        got = getattr(fanned, head)
        assert got.shape[0] == count * n
        for block in range(count):
            torch.testing.assert_close(got[block * n : (block + 1) * n], getattr(separate[block], head),
                                       rtol=1e-4, atol=1e-5)


@pytest.fixture
def fake_fmnist(tmp_path, monkeypatch):
    return use_fake_fashion_mnist(tmp_path, monkeypatch, n_test=4)


def _fashion_loaded(seed: int = 0):
    """The tiny test net, its classes named as Fashion-MNIST's so the (fake) test set's labels fit."""
    loaded = make_loaded(seed)
    return dataclasses.replace(loaded, card=dataclasses.replace(loaded.card, classes=list(FASHION_MNIST_CLASSES)))


def test_branch_importance_counts_equal_separate_forwards(fake_fmnist):
    loaded = _fashion_loaded()
    data = fashion_mnist_test(loaded)
    result = branch_importance(loaded, data, batch_size=3)
    expected = np.zeros((37, 3), dtype=np.int64)
    with torch.inference_mode():
        for x, y, _ in data.batches(3):
            for row, knockouts in enumerate([[]] + [[parse_channel(p.name)] for p in BRANCH_POINTS]):
                with knocked_out(loaded.net, knockouts):
                    out = loaded.net(x)
                expected[row] += [int((getattr(out, h).argmax(1) == y).sum()) for h in HEADS]
    assert np.array_equal(result.correct, expected)
    frame = result.to_frame()
    assert len(frame) == 36 * 3 and set(frame["head"]) == set(HEADS)
    late = frame[(frame["head"] == "aux1") & frame["module"].isin(["inception4b", "inception5b"])]
    assert (late["drop"] == 0).all()  # aux1 never reads them
    again = BranchImportance.from_arrays(result.to_arrays())
    assert (again.images, again.data) == (result.images, result.data) and np.array_equal(again.correct, result.correct)
    json.dumps(result.to_dict())


def test_importance_is_cached_by_weights_and_data(fake_fmnist, monkeypatch):
    loaded = _fashion_loaded()
    data = fashion_mnist_test(loaded, limit=2)
    first = importance(loaded, data)
    monkeypatch.setattr(ablation, "branch_importance", lambda *a, **k: pytest.fail("recomputed a cached table"))
    assert np.array_equal(importance(loaded, fashion_mnist_test(loaded, limit=2)).correct, first.correct)
    assert importance(_fashion_loaded(seed=1), data, build=False) is None  # other weights: nothing cached


def test_importance_needs_labels_the_weights_know(fake_fmnist):
    loaded = make_loaded()  # classes c0..c9, not Fashion-MNIST's
    with pytest.raises(DatasetError, match="labelled with other classes"):
        importance(loaded, fashion_mnist_test(loaded))
    with pytest.raises(DatasetError, match="image folder"):
        branch_importance(loaded, sample_set(loaded))


def test_other_weights_without_a_folder_are_told_to_name_one(tmp_path, monkeypatch):
    # Their default set is the samples (gnet.inspect.evaluation.evaluation_set), which carry no labels these weights know.
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="use an image folder named after the weights' classes"):
        importance(make_loaded())


def test_the_shipped_table_is_the_bundled_weights_and_matches_their_card():
    card = json.loads((ASSETS_DIR / f"{ablation.ASSET}.json").read_text())
    loaded = load("bundled", "cpu")
    assert card["key"]["weights"] == loaded.weights_hash
    shipped = importance(loaded, build=False)  # without the dataset too: the shipped table for these weights
    assert shipped is not None and shipped.images == 10_000
    # The intact row is recomputed here and also measured, independently, when the weights were exported.
    for head, accuracy in shipped.intact.items():
        assert accuracy == pytest.approx(loaded.card.accuracy[head], abs=1e-4), head
