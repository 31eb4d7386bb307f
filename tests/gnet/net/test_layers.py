"""gnet.net.layers: the table of named points agrees with the network it describes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gnet.errors import TargetError
from gnet.inspect.probe import capture
from gnet.net.layers import (
    AUX_ATTACH,
    BLOCKS,
    BRANCH_POINTS,
    HEADS,
    WEIGHT_LAYERS,
    block_of,
    heads_reaching,
    modules_read_by,
    parse_channel,
    point,
    submodule,
)
from gnet.net.model import HeadLogits, batch_statistics_defined, googlenet


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return googlenet(num_classes=10, seed=0).eval()


def test_heads_are_the_forward_outputs_in_order():
    assert HeadLogits._fields == HEADS


def test_blocks_are_the_forward_order(net):
    """Hooks on every top-level block record them in the order the table lists."""
    order: list[str] = []
    blocks = {b.name: getattr(net, b.name) for b in BLOCKS}
    handles = [m.register_forward_hook(lambda *_, name=name: order.append(name)) for name, m in blocks.items()]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, 64, 64))
    finally:
        for h in handles:
            h.remove()
    assert order == [b.name for b in BLOCKS]
    assert {name for name, _ in net.named_children()} == set(blocks)


def test_weight_layers_cover_every_conv_and_linear_in_forward_order(net):
    names = [p.name for p in WEIGHT_LAYERS]
    assert len(names) == len(set(names)) == 3 + 9 * 6 + 2 * 3 + 1
    assert names[:4] == ["conv1.conv", "conv2.conv", "conv3.conv", "inception3a.1x1.conv"] and names[-1] == "fc"
    assert names[names.index("inception4a.pool_proj.proj") + 1 : names.index("inception4b.1x1.conv")] == [
        "aux1.conv", "aux1.fc1", "aux1.fc2",
    ]
    modules = [submodule(net, n) for n in names]
    expected = {id(m) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert {id(m) for m in modules} == expected
    assert [p.depth for p in WEIGHT_LAYERS] == list(range(len(names)))
    # Forward order: the conv/linear layers run in exactly this order.
    with capture(net, dict(zip(names, modules))) as seen, torch.no_grad():
        net(torch.zeros(1, 3, 64, 64))
    assert list(seen) == names


def test_branch_points_are_channel_slices_of_their_module(net):
    x = torch.randn(1, 3, 64, 64)
    points = {p.name: submodule(net, p.name) for p in BRANCH_POINTS} | {"inception4c": net.inception4c}
    with capture(net, points) as out, torch.no_grad():
        net(x)
    for p in BRANCH_POINTS:
        if p.module != "inception4c":
            continue
        target = parse_channel(p.name)
        assert out[p.name].shape[1] == p.channels
        assert torch.equal(out["inception4c"][:, target.offset : target.offset + p.channels], out[p.name])


def test_heads_reaching_follow_the_aux_attachments():
    assert heads_reaching("conv1") == HEADS
    assert heads_reaching("inception4a") == HEADS
    assert heads_reaching("inception4b") == ("main", "aux2")
    assert heads_reaching("inception4e") == ("main",)
    assert point("aux1.fc1").heads == ("aux1",) and point("fc").heads == ("main",)
    assert modules_read_by("aux1")[-1] == AUX_ATTACH["aux1"] and modules_read_by("main")[-1] == "inception5b"
    assert modules_read_by("aux2")[-1] == AUX_ATTACH["aux2"]


def test_names_resolve_to_their_block():
    assert block_of("inception3a.3x3.reduce.relu").name == "inception3a"
    assert block_of("conv1.bn").kind == "stem" and block_of("maxpool3").section == "body"
    assert block_of("inception4c.5x5:12").name == "inception4c"
    with pytest.raises(KeyError):
        block_of("resnet.layer1")
    with pytest.raises(KeyError, match="not a GoogLeNet point"):
        point("inception3a.7x7")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inception9z.1x1", "Unknown module 'inception9z'"),
        ("inception4c.7x7", "Unknown branch '7x7'"),
        ("inception4c.5x5:64", "Channel 64 is out of range: inception4c.5x5 has channels 0 to 63"),
        ("inception4c.5x5:-1", "Channel -1 is out of range"),
        ("nonsense", "is not a branch or channel"),
    ],
)
def test_parse_channel_names_the_valid_choices(text, message):
    with pytest.raises(TargetError, match=message):
        parse_channel(text)


def test_parse_channel_offsets():
    t = parse_channel("inception4c.5x5:12")
    assert (t.module, t.branch, t.channel, t.name) == ("inception4c", "5x5", 12, "inception4c.5x5:12")
    assert t.offset == 128 + 256  # after the 1x1 and 3x3 branches
    assert parse_channel("inception3a.pool_proj").channel is None


def test_single_image_batch_norm_threshold_matches_the_net():
    """batch_statistics_defined's size limit is where a lone image stops failing in batch norm."""
    net = googlenet(num_classes=10, seed=0).train()
    assert not batch_statistics_defined(1, 46) and batch_statistics_defined(1, 47) and batch_statistics_defined(2, 32)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        net(torch.zeros(1, 3, 46, 46))
    net(torch.zeros(1, 3, 47, 47))
