"""The design lab's variants (gnet.net.model) and their measurements (gnet.net.design)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import googlenet as tv_googlenet

from gnet.errors import DesignError
from gnet.net import design as lab
from gnet.net.design import measured
from gnet.net.cost import flops, totals
from gnet.net.design import CHOICES, PAPER, Design
from gnet.net.model import GoogLeNet, googlenet

VARIANTS = {
    "paper": {},
    "3x3 stem": {"stem": "3x3"},
    "vgg stem": {"stem": "vgg"},
    "no reductions": {"reductions": False},
    "no pool proj": {"pool_proj": False},
    "naive": {"reductions": False, "pool_proj": False},
    "fc": {"classifier": "fc"},
    "everything, paper's no-BN net": {"batch_norm": False, "branch5x5_kernel": 5, "stem": "vgg", "reductions": False,
                                      "pool_proj": False, "classifier": "fc"},
}


def _build(kw: dict, size: int, meta: bool = True) -> GoogLeNet:
    kw = {**kw, **({"fc_input_size": size} if kw.get("classifier") == "fc" else {})}
    if not meta:
        return googlenet(num_classes=10, seed=0, **kw)
    with torch.device("meta"):
        return googlenet(**kw)


@pytest.mark.parametrize("size", [224, 64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_costs_what_flop_counter_counts(name, size):
    net = _build(VARIANTS[name], size).eval()
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 3, size, size))
    rows = flops(net, size)
    assert totals(rows)["flops"] == counter.get_total_flops()
    assert totals(rows)["params"] == sum(p.numel() for p in net.parameters())


def test_the_paper_design_keeps_torchvision_state_dict_keys():
    ours = googlenet(seed=0).state_dict()
    theirs = tv_googlenet(weights=None, aux_logits=True, init_weights=False).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_a_variant_only_drops_keys_or_changes_shapes():
    paper = googlenet(seed=0).state_dict()
    no_reduce = googlenet(reductions=False, seed=0).state_dict()
    assert set(no_reduce) < set(paper)
    assert "inception3a.branch2.1.conv.weight" in no_reduce  # the 3x3 convolution keeps its key
    assert "inception3a.branch2.0.conv.weight" not in no_reduce
    assert no_reduce["inception3a.branch2.1.conv.weight"].shape[1] == 192  # it reads the module's input


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_runs_forward_and_backward(name):
    net = _build(VARIANTS[name], 64, meta=False).train()
    out = net(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in out] == [torch.Size([2, 10])] * 3
    sum(o.sum() for o in out).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_widths_grow_without_pool_projections():
    net = _build({"pool_proj": False}, 224)
    width = 192
    for name, module in net.inception_modules().items():
        assert module.in_channels == width  # each module reads what the one below produced
        assert module.branch_channels["pool_proj"] == width  # the pooled input passes through whole
        width = module.out_channels
    assert net.fc.in_features == width == lab.cost_of(Design(pool_proj=False)).width > 1024


@pytest.mark.parametrize("size", [224, 97, 64, 33])
def test_trunk_side_is_the_last_map_side(size):
    net = googlenet(seed=0).eval()
    taps = {}
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size), taps)
    assert net.trunk_side(size) == taps["inception5b"].shape[-1]
    assert _build({"stem": "vgg"}, size, meta=False).trunk_side(size) == net.trunk_side(size)  # shapes unchanged


def test_the_fc_classifier_is_sized_by_the_input():
    net = _build({"classifier": "fc"}, 224)
    assert net.fc.weight.shape == (1000, 1024 * 7 * 7)
    with pytest.raises(ValueError, match="fc_input_size"):
        googlenet(classifier="fc")


def test_design_names_and_configs():
    assert PAPER.name == "paper" and PAPER.config(num_classes=10, input_size=64).is_paper_design
    assert Design(reductions=False, pool_proj=False).name == "naive module (Figure 2a)"
    config = Design(stem="vgg", classifier="fc").config(num_classes=10, input_size=96)
    assert config.design_changes == ["vgg stem", "fc classifier at 96 px"]
    assert len({d.name for d in CHOICES}) == len(CHOICES) >= 6


def test_stem_terms_multiply_out_to_the_cost_model():
    terms = lab.stem_terms(224)
    for t in terms:
        assert t["macs"] == t["cost_model_macs"] == t["c_out"] * t["c_in"] * t["k_h"] * t["k_w"] * t["h_out"] * t["w_out"]
    paper = next(t for t in terms if t["stem"] == "paper stem")
    assert (paper["c_out"], paper["c_in"], paper["h_out"]) == (64, 3, 112)
    thin = next(t for t in terms if "channels shrunk" in t["stem"])
    assert thin["macs"] == paper["macs"]  # a quarter of the channels at full size costs what stride 2 costs


def test_claims_judge_the_numbers():
    paper = lab.cost_of(PAPER)
    fc = lab.cost_of(Design(classifier="fc"))
    assert fc.fc_params == 1024 * 7 * 7 * 1000 + 1000 and paper.fc_params == 1024 * 1000 + 1000
    (claim,) = lab.claims(fc, paper)
    assert claim.choice == "classifier" and claim.holds and "50.18 M" in claim.measured
    (claim,) = lab.claims(lab.cost_of(Design(reductions=False)), paper)
    assert claim.holds == (lab.cost_of(Design(reductions=False)).macs - paper.macs > paper.macs)
    # At 64 px the trunk shrinks with the area and the aux heads' dense layers do not: the claim can fail.
    small = lab.cost_of(PAPER, input_size=64)
    (claim,) = lab.claims(lab.cost_of(Design(aux=False), input_size=64), small)
    aux = sum(r.macs for r in small.rows if r.module in ("aux1", "aux2"))
    assert claim.holds == (aux / small.macs_training < 0.05)
    assert claim.holds is False and "NOT" not in claim.measured


def test_stages_add_up():
    cost = lab.cost_of(Design(stem="vgg"), input_size=96, num_classes=10)
    assert sum(cost.stage_macs.values()) == cost.macs_training
    assert cost.macs_training - cost.macs == cost.stage_macs["aux heads"] > 0
    assert sum(cost.stage_params.values()) == cost.params


def test_activation_bytes_scale_with_the_batch_and_leave_no_hook():
    one = lab.activation_bytes(PAPER, input_size=64, num_classes=10, batch_size=1)
    four = lab.activation_bytes(PAPER, input_size=64, num_classes=10, batch_size=4)
    assert one["trunk"] > 0 and one["aux"] > 0
    assert 3.5 < four["trunk"] / one["trunk"] < 4.5
    # Without 1x1 reductions the reduce layers' outputs are not saved, but the wider 3x3 inputs are shared.
    assert lab.activation_bytes(Design(stem="vgg"), input_size=64, num_classes=10)["trunk"] > one["trunk"]


def test_latency_is_timed_against_the_paper():
    result = lab.measure_latency([Design(stem="3x3")], input_size=32, num_classes=10, batch_sizes=(2, 3), repeats=1,
                                 device="cpu")
    assert len(result.rows) == 2 * 2 * 2  # designs x batch sizes x passes
    for row in result.rows:
        assert row["median_s"] > 0
        if row["design"] == "paper":
            assert row["ratio"] == 1.0


@pytest.mark.parametrize("design, size, fragment", [
    (Design(stem="huge"), 224, "Unknown stem 'huge'"),
    (Design(classifier="dense"), 224, "Unknown classifier"),
    (Design(stem="vgg"), 16, "needs at least 32 pixels"),
    (PAPER, 4096, "too large"),
])
def test_bad_designs_are_one_sentence(design, size, fragment):
    with pytest.raises(DesignError, match=fragment):
        lab.cost_of(design, input_size=size)


def test_a_design_too_large_for_memory_is_refused_before_it_allocates(monkeypatch):
    monkeypatch.setattr(measured, "available_memory", lambda device: 2**20)
    monkeypatch.setattr(measured, "_built", lambda *a: pytest.fail("a net was built"))
    with pytest.raises(DesignError, match=r"needs up to [\d.]+ GiB .* has 0.0 GiB free"):
        lab.measure_latency([Design(reductions=False)], input_size=224, batch_sizes=(32,))


def test_compare_designs_to_dict_is_plain_json():
    import json

    result = lab.compare_designs([Design(pool_proj=False)], input_size=64, num_classes=10, latency=False)
    d = json.loads(json.dumps(result.to_dict()))
    assert [r["design"] for r in d["table"]] == ["paper", "no pool projection"]
    assert d["table"][0]["activation_ratio"] == 1.0 and d["table"][1]["params_ratio"] > 1
    assert d["claims"]["no pool projection"][0]["holds"]


def test_one_image_too_small_for_batch_norm_is_refused():
    with pytest.raises(DesignError, match="batch of 2 or more"):
        lab.measure_latency([], input_size=32, num_classes=10, batch_sizes=(1,), repeats=1)
    # The memory is then measured on two images and given per image.
    result = lab.compare_designs([Design(stem="3x3")], input_size=32, num_classes=10, latency=False)
    assert result.activation_bytes["paper"]["trunk"] > 0
