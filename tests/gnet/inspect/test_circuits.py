"""Circuits: the expanded weights against the weights themselves and against the gradient, completeness, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gnet.errors import TargetError
from gnet.inspect import circuits
from gnet.inspect.circuits import _gradient_column, _gradient_row, expanded_weights
from gnet.inspect.contributions import contributions
from gnet.net.layers import BRANCHES, INCEPTION_MODULES, branch_channels, parse_channel
from gnet.net.model import googlenet
from gnet.weights.card import LoadedModel
from tests.conftest import make_loaded


def _loaded(net: torch.nn.Module) -> LoadedModel:
    base = make_loaded()
    return LoadedModel(net=net.eval(), card=base.card, transform=base.transform, device=base.device, source="test")


@pytest.fixture(scope="module")
def plain() -> LoadedModel:
    """The paper's net: no batch norm, a real 5x5 branch."""
    return _loaded(googlenet(num_classes=10, batch_norm=False, branch5x5_kernel=5, init="kaiming", seed=1))


@pytest.fixture(scope="module")
def normed() -> LoadedModel:
    """torchvision's net with batch-norm statistics and scales far from the identity, so folding them matters."""
    net = googlenet(num_classes=10, init="kaiming", seed=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 2 - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
    return _loaded(net)


def _rows(module: str, branch: str) -> slice:
    start = parse_channel(f"{module}.{branch}:0").offset
    return slice(start, start + branch_channels(module, branch))


def test_a_1x1_channel_without_batch_norm_has_exactly_its_convolution_weights(plain):
    inception = plain.net.inception4a
    weights = expanded_weights(inception)
    assert weights.shape == (512, 480, 5, 5)
    one = weights[_rows("inception4a", "1x1")]
    conv = inception.branch1.conv.weight[:, :, 0, 0]
    assert torch.equal(one[:, :, 2, 2], conv)
    one[:, :, 2, 2] = 0
    assert not one.any()  # nothing outside the centre


def test_a_reduce_then_conv_channel_is_the_product_of_the_two_weight_matrices(plain):
    for branch, index in (("3x3", 1), ("5x5", 2)):
        block = getattr(plain.net.inception4a, f"branch{index + 1}")
        reduce = block[0].conv.weight[:, :, 0, 0]  # R x C_in
        conv = block[1].conv.weight  # C x R x k x k
        k = conv.shape[-1]
        product = (conv.permute(0, 2, 3, 1) @ reduce).permute(0, 3, 1, 2)  # C x C_in x k x k
        got = expanded_weights(plain.net.inception4a)[_rows("inception4a", branch)]
        pad = (5 - k) // 2
        torch.testing.assert_close(got[..., pad : pad + k, pad : pad + k], product, rtol=1e-5, atol=1e-6)
        assert not got[..., :pad, :].any() and not got[..., :, 5 - pad :].any()


def test_batch_norm_scales_are_folded_in_and_the_pool_projection_spread_over_its_window(normed):
    inception = normed.net.inception3b
    block = inception.branch2
    s1 = block[0].bn.weight / torch.sqrt(block[0].bn.running_var + block[0].bn.eps)
    s2 = block[1].bn.weight / torch.sqrt(block[1].bn.running_var + block[1].bn.eps)
    reduce = block[0].conv.weight[:, :, 0, 0] * s1[:, None]
    conv = block[1].conv.weight * s2[:, None, None, None]
    product = (conv.permute(0, 2, 3, 1) @ reduce).permute(0, 3, 1, 2)
    weights = expanded_weights(inception).detach()
    torch.testing.assert_close(weights[_rows("inception3b", "3x3")], product.detach(), rtol=1e-5, atol=1e-6)
    proj = inception.branch4[1]
    scale = proj.bn.weight / torch.sqrt(proj.bn.running_var + proj.bn.eps)
    pooled = weights[_rows("inception3b", "pool_proj")]
    expected = (proj.conv.weight[:, :, 0, 0] * scale[:, None] / 9).detach()
    for dy in range(3):
        for dx in range(3):
            torch.testing.assert_close(pooled[:, :, dy, dx], expected)


@pytest.mark.parametrize("fixture", ["plain", "normed"])
def test_the_gradient_method_agrees_with_the_weights_both_ways(fixture, request):
    loaded = request.getfixturevalue(fixture)
    inception = loaded.net.inception4a
    weights = expanded_weights(inception).detach()
    for branch in BRANCHES:
        for channel in (0, branch_channels("inception4a", branch) - 1):
            target = parse_channel(f"inception4a.{branch}:{channel}")
            row = _gradient_row(inception, target, 480)
            torch.testing.assert_close(row, weights[target.offset + channel], rtol=1e-4, atol=1e-6)
    for channel in (0, 200, 479):
        column = _gradient_column(inception, channel, 480)
        torch.testing.assert_close(column, weights[:, channel], rtol=1e-4, atol=1e-6)


def test_upstream_and_downstream_rank_the_strongest_connections_by_either_method(normed):
    up = circuits.upstream(normed, "inception4a.3x3:12", k=5)
    assert up.other == "inception3b" and up.direction == "upstream"
    weights = expanded_weights(normed.net.inception4a).detach()[parse_channel("inception4a.3x3:12").offset + 12]
    strength = weights.sum(dim=(1, 2))
    top = torch.argsort(strength, descending=True)[:5]
    assert [c.channel for c in up.excite] == [circuits.channel_of("inception3b", int(i)).name for i in top]
    assert [c.weight for c in up.excite] == sorted((c.weight for c in up.excite), reverse=True)
    assert all(c.weight < 0 for c in up.inhibit) and up.inhibit[0].weight == pytest.approx(float(strength.min()))
    by_gradient = circuits.upstream(normed, "inception4a.3x3:12", k=5, method="gradient")
    assert by_gradient.channels == up.channels
    down = circuits.downstream(normed, "inception4a.3x3:12", k=3)
    down_gradient = circuits.downstream(normed, "inception4a.3x3:12", k=3, method="gradient")
    assert down.other == "inception4b" and down.channels == down_gradient.channels
    column = expanded_weights(normed.net.inception4b).detach()[:, parse_channel("inception4a.3x3:12").offset + 12]
    assert down.excite[0].weight == pytest.approx(float(column.sum(dim=(1, 2)).max()), rel=1e-5)
    assert down.excite[0].kernel.shape == (3, 3)
    json.dumps(up.to_dict())


def test_channel_of_inverts_the_module_index():
    for module in ("inception3a", "inception4e"):
        width = sum(branch_channels(module, b) for b in BRANCHES)
        for index in (0, 63, 64, width - 1):
            t = circuits.channel_of(module, index)
            assert t.offset + t.channel == index
        with pytest.raises(IndexError):
            circuits.channel_of(module, width)


def test_contributions_sum_to_the_activation_minus_its_baseline(normed):
    g = torch.Generator().manual_seed(5)
    images = torch.randn(3, 3, 64, 64, generator=g)
    target = "inception4a.1x1:40"
    circuit = contributions(normed, target, images, k=4, steps=64)
    d = circuit.data
    assert d["images"] == 3 and d["activation"] > d["baseline"] - 1  # a real value, not a placeholder
    difference = d["activation"] - d["baseline"]
    assert abs(difference) > 1e-3
    assert d["sum_of_contributions"] == pytest.approx(difference, abs=0.02 * abs(difference) + 1e-4)
    # Completeness is integrated gradients' property: the error shrinks with more steps.
    rough = contributions(normed, target, images, k=4, steps=4)
    assert abs(d["sum_of_contributions"] - difference) <= abs(rough.data["sum_of_contributions"] - difference) + 1e-6
    # The activation is the branch's real spatial-mean output on those images.
    with torch.no_grad():
        out = normed.net.inception4a.branch1(normed.net.maxpool3(_output_of(normed.net, "inception3b", images)))
    assert d["activation"] == pytest.approx(float(out[:, 40].mean()), rel=1e-5)
    used = [c.contribution for c in circuit.excite]
    assert used == sorted(used, reverse=True) and used[0] > 0
    assert circuit.method == "integrated_gradients" and circuit.other == "inception3b"


def _output_of(net, module, x):
    from gnet.inspect.probe import forward_to

    return forward_to(net, x, module)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda m: circuits.upstream(m, "inception3a.3x3:0"), "circuits start at inception3b"),
        (lambda m: contributions(m, "inception3a.1x1:0", torch.zeros(1, 3, 64, 64)), "start at inception3b"),
        (lambda m: circuits.downstream(m, "inception5b.1x1:0"), "shown up to inception5a"),
        (lambda m: circuits.upstream(m, "inception4a.3x3:12", k=0), "choose 1 to 480 connections"),
        (lambda m: circuits.downstream(m, "inception4a.3x3:12", k=513), "choose 1 to 512 connections"),
        (lambda m: circuits.upstream(m, "inception4a.3x3:208"), "channels 0 to 207"),
        (lambda m: circuits.upstream(m, "inception4a.3x3"), "name one of its channels"),
        (lambda m: circuits.upstream(m, "conv3:4"), "MODULE.BRANCH"),
    ],
)
def test_bad_targets_and_k_are_one_sentence(call, fragment, tiny_loaded):
    with pytest.raises(TargetError, match=fragment) as caught:
        call(tiny_loaded)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message


def test_every_module_but_the_ends_has_both_sides(tiny_loaded):
    for module in INCEPTION_MODULES[1:-1]:
        assert circuits.below(module) != circuits.above(module)
        assert circuits.upstream(tiny_loaded, f"{module}.5x5:0", k=2).excite
    np.testing.assert_array_equal(circuits.upstream(tiny_loaded, "inception5b.1x1:0", k=1).excite[0].kernel.shape, (3, 3))
