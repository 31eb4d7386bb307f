"""The analytic cost model: hand-computed layers, exact totals against FlopCounterMode, Table 1."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gnet.net.cost import KINDS, CostRow, UnsupportedModuleError, flops, layer_cost, to_frame, totals
from gnet.net.model import googlenet

VARIANTS = [(True, 3), (True, 5), (False, 3), (False, 5)]  # (batch_norm, branch5x5_kernel)


def meta_net(batch_norm: bool = True, kernel: int = 3, **kw) -> nn.Module:
    """A GoogLeNet without storage: shapes and parameter counts only, built in milliseconds."""
    with torch.device("meta"):
        return googlenet(batch_norm=batch_norm, branch5x5_kernel=kernel, **kw).eval()


def by_name(rows: list[CostRow]) -> dict[str, CostRow]:
    return {r.name: r for r in rows}


def test_small_convolution_by_hand() -> None:
    row = layer_cost(nn.Conv2d(3, 8, 3, stride=2, padding=1), (3, 10, 10))
    # (10 + 2*1 - 3) // 2 + 1 = 5; each of 8*5*5 outputs sums 3*3*3 products.
    assert row.out_shape == (8, 5, 5)
    assert row.macs == 8 * 5 * 5 * 3 * 3 * 3
    assert row.flops == 2 * row.macs
    assert row.params == 8 * 3 * 3 * 3 + 8
    assert (row.kind, row.other_ops) == ("conv", 0)


def test_other_layers_by_hand() -> None:
    pool = layer_cost(nn.MaxPool2d(3, stride=2, ceil_mode=True), (4, 7, 7))
    # ceil((7 - 3) / 2) + 1 = 3; 3*3 comparisons per output element.
    assert pool.out_shape == (4, 3, 3)
    assert pool.other_ops == 4 * 3 * 3 * 9 and pool.macs == 0
    # ceil_mode drops a last window that would start in the padding: 3 windows by the formula, 2 real.
    edge = nn.MaxPool2d(2, stride=3, padding=1, ceil_mode=True)
    assert layer_cost(edge, (1, 4, 4)).out_shape == tuple(edge(torch.zeros(1, 1, 4, 4)).shape[1:]) == (1, 2, 2)
    # Adaptive 5 -> 2 uses windows [0, 3) and [2, 5): 3 + 3 per axis.
    adaptive = layer_cost(nn.AdaptiveAvgPool2d(2), (4, 5, 5))
    assert adaptive.out_shape == (4, 2, 2) and adaptive.other_ops == 4 * 6 * 6
    bn = layer_cost(nn.BatchNorm2d(4), (4, 5, 5))
    assert (bn.kind, bn.params, bn.other_ops) == ("norm", 8, 2 * 100)
    fc = layer_cost(nn.Linear(20, 7), (20,))
    assert (fc.out_shape, fc.macs, fc.params) == ((7,), 140, 147)


@pytest.mark.parametrize("batch_norm, kernel", VARIANTS)
@pytest.mark.parametrize("size", [224, 97, 64])
def test_total_flops_equal_flop_counter_mode(batch_norm: bool, kernel: int, size: int) -> None:
    net = meta_net(batch_norm, kernel)
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 3, size, size, device="meta"))  # all three heads run, in eval mode too
    rows = flops(net, size)
    assert totals(rows)["flops"] == counter.get_total_flops()
    assert totals(rows)["flops"] == 2 * totals(rows)["macs"]


@pytest.mark.parametrize("batch_norm, kernel", VARIANTS)
def test_params_sum_to_module_params(batch_norm: bool, kernel: int) -> None:
    net = meta_net(batch_norm, kernel, num_classes=10)
    assert totals(flops(net))["params"] == sum(p.numel() for p in net.parameters())


def test_convention_per_row() -> None:
    rows = flops(meta_net(False, 5, transform_input=True))
    assert {r.kind for r in rows} == set(KINDS)
    for r in rows:
        assert r.flops == 2 * r.macs
        assert (r.macs > 0) == (r.kind in ("conv", "linear"))
        if r.kind in ("pool", "norm", "act"):
            assert r.other_ops > 0


def test_rows_follow_the_forward() -> None:
    rows = flops(meta_net(True, 3))
    names = [r.name for r in rows]
    assert names[0] == "conv1.conv" and names[-1] == "fc"
    assert "lrn1" not in names  # Identity in the batch-norm layout: no row
    # aux1 reads inception4a's output and runs before inception4b.
    assert names.index("inception4a.pool_proj.proj.relu") + 1 == names.index("aux1.pool")
    assert names.index("aux1.fc2") + 1 == names.index("inception4b.1x1.conv")
    assert names.index("aux2.pool") > names.index("inception4d.pool_proj.proj")
    r = by_name(rows)
    assert (r["inception3a.3x3.reduce"].module, r["inception3a.3x3.reduce"].branch) == ("inception3a", "3x3")
    assert (r["maxpool3"].module, r["aux2.fc1"].module, r["fc"].module) == ("pool", "aux2", "head")
    assert list(to_frame(rows).columns)[:3] == ["name", "kind", "module"]
    assert len(to_frame(rows)) == len(rows)


@pytest.mark.parametrize("batch_norm, kernel", [(True, 3), (False, 5)])
def test_out_shapes_match_a_real_forward(batch_norm: bool, kernel: int) -> None:
    size = 67  # odd sizes exercise ceil_mode pooling
    net = meta_net(batch_norm, kernel, num_classes=10).to_empty(device="cpu")  # values unused: shapes only
    r = by_name(flops(net, size))
    with torch.no_grad():
        x = net.conv1(torch.rand(1, 3, size, size))
        assert tuple(x.shape[1:]) == r["conv1.conv"].out_shape
        x = net.maxpool1(x)
        assert tuple(x.shape[1:]) == r["maxpool1"].out_shape
        x = net.maxpool2(net.lrn2(net.conv3(net.conv2(net.lrn1(x)))))
        assert tuple(x.shape[1:]) == r["maxpool2"].out_shape
        five = net.inception3a.branches["5x5"](x)
        assert tuple(five.shape[1:]) == r["inception3a.5x5.conv"].out_shape
        x = net.maxpool3(net.inception3b(net.inception3a(x)))
        assert tuple(x.shape[1:]) == r["maxpool3"].out_shape
        x = net.inception4a(x)
        assert tuple(net.aux1.pool(x).shape[1:]) == r["aux1.pool"].out_shape
        assert tuple(net.aux1(x).shape[1:]) == r["aux1.fc2"].out_shape
        assert tuple(net(torch.rand(1, 3, size, size)).main.shape[1:]) == r["fc"].out_shape


def test_unknown_module_type_raises() -> None:
    net = meta_net(False, 5)
    net.lrn1 = nn.GELU()
    with pytest.raises(UnsupportedModuleError, match="'lrn1' is a GELU"):
        flops(net)


def test_too_small_input_raises() -> None:
    with pytest.raises(ValueError, match="maxpool1"):
        flops(meta_net(), 2)
