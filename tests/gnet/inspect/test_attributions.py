"""gnet.inspect.attributions: shapes and ranges, progress, determinism, and no hook or mode left behind."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from gnet.errors import TargetError
from gnet.inspect import attributions as A
from gnet.net.model import googlenet
from gnet.weights.card import LoadedModel, ModelCard
from tests.conftest import modules_with_hooks

SIZE = 48  # the smallest inputs keep the suite light; every layer still produces an output


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return googlenet(num_classes=10, seed=0).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def _check_heatmap(h: np.ndarray, *, may_be_empty: bool = False) -> None:
    assert h.shape == (SIZE, SIZE)
    assert h.dtype == np.float32
    assert 0.0 <= h.min() and h.max() <= 1.0
    # Grad-CAM keeps positive evidence only; an untrained net can have none for a class.
    assert h.max() == pytest.approx(1.0) or (may_be_empty and h.max() == 0.0)


def test_saliency(net, x):
    _check_heatmap(A.saliency(net, x, 3, head="aux2"))
    assert not modules_with_hooks(net)


def test_integrated_gradients_reports_progress_and_is_seeded(net, x):
    seen: list[float] = []
    h = A.integrated_gradients(net, x, 3, n_steps=3, nt_samples=2, internal_batch_size=2, progress=seen.append)
    _check_heatmap(h)
    assert seen == [0.5, 1.0]
    again = A.integrated_gradients(net, x, 3, n_steps=3, nt_samples=2, internal_batch_size=2)
    np.testing.assert_array_equal(h, again)
    assert not modules_with_hooks(net)


@pytest.mark.parametrize("branch", ["1x1", "5x5", "pool_proj"])
def test_grad_cam_on_a_branch(net, x, branch):
    _check_heatmap(A.grad_cam(net, x, 1, module="inception3b", branch=branch, head="aux1"), may_be_empty=True)
    assert not modules_with_hooks(net)


def test_grad_cam_refuses_a_module_the_head_never_reads(net, x):
    with pytest.raises(ValueError, match="branches off before inception5a"):
        A.grad_cam(net, x, 1, module="inception5a", branch="1x1", head="aux1")
    with pytest.raises(TargetError, match="Unknown branch '7x7'"):
        A.grad_cam(net, x, 1, module="inception3a", branch="7x7")


def test_restores_training_mode(x):
    net = googlenet(num_classes=10, seed=0).train()
    net.aux1.eval()  # a mixed mode must come back as it was
    A.saliency(net, x, 0)
    assert net.training and not net.aux1.training and net.inception3a.training


@pytest.mark.parametrize("method", ["saliency", "grad_cam", "integrated_gradients"])
def test_no_hook_left_when_a_layer_raises(x, method):
    net = googlenet(num_classes=10, seed=0).eval()

    class Boom(RuntimeError):
        pass

    def explode(*_args):
        raise Boom("layer failed")

    net.inception4e.register_forward_hook(lambda *_: None)  # a hook the caller owns must survive
    net.inception4b.forward = explode  # a layer after the Grad-CAM layer, so captum's hook is in place
    with pytest.raises(Boom):
        if method == "saliency":
            A.saliency(net, x, 0)
        elif method == "grad_cam":
            A.grad_cam(net, x, 0, module="inception3a", branch="3x3")
        else:
            A.integrated_gradients(net, x, 0, n_steps=2, nt_samples=1)
    assert modules_with_hooks(net) == ["inception4e"]
    assert len(net.inception4e._forward_hooks) == 1
    assert not net.training


def test_attribute_defaults_to_the_heads_top_class(net, x):
    card = ModelCard(
        name="test",
        source="test",
        classes=[f"c{i}" for i in range(10)],
        input_size=SIZE,
        normalization={"mean": [0.5] * 3, "std": [0.5] * 3},
        heads_trained=dict.fromkeys(A.HEADS, False),
    )
    loaded = LoadedModel(net=net, card=card, transform=lambda im: im, device=torch.device("cpu"), source="test")
    seen: list[float] = []
    result = A.attribute(loaded, x, "grad_cam", head="aux2", module="inception4d", branch="1x1", progress=seen.append)
    with torch.no_grad():
        expected = int(net(x).aux2.argmax())
    assert (result.target, result.target_label, result.layer) == (expected, f"c{expected}", "inception4d.1x1")
    assert seen == [1.0]
    assert "aux2" in result.title and result.to_dict()["heatmap_shape"] == [SIZE, SIZE]
    # blank: a map with no evidence anywhere (an empty Grad-CAM), which the app explains instead of drawing.
    assert result.blank == (result.heatmap.max() == 0.0)
    assert dataclasses.replace(result, heatmap=np.zeros_like(result.heatmap)).blank
    one = np.zeros_like(result.heatmap)
    one[3, 5] = 0.25
    assert not dataclasses.replace(result, heatmap=one).blank


def test_ig_plan_keeps_a_request_within_its_budget():
    plan = A.plan_integrated_gradients(64, 16, seconds_per_pass=0.5, budget_s=60)
    assert plan.clamped and plan.seconds <= 60
    assert plan.n_steps * plan.nt_samples * 0.5 == pytest.approx(plan.seconds)
    assert (plan.n_steps, plan.nt_samples) == (64, 1)  # samples are cut first: each one is a whole path
    assert plan.notice.startswith("64 steps x 16 samples would take about 512 s here, over the 60 s")
    fits = A.plan_integrated_gradients(16, 4, seconds_per_pass=0.01, budget_s=60)
    assert not fits.clamped and fits.notice == "" and (fits.n_steps, fits.nt_samples) == (16, 4)
    slow = A.plan_integrated_gradients(64, 16, seconds_per_pass=100.0, budget_s=60)
    assert (slow.n_steps, slow.nt_samples) == (4, 1)  # never below the smallest useful setting
    beyond = A.plan_integrated_gradients(500, 99, seconds_per_pass=0.0001, budget_s=60)
    assert (beyond.n_steps, beyond.nt_samples) == (A.IG_MAX_STEPS, A.IG_MAX_SAMPLES) and beyond.clamped


def test_ig_all_steps_in_one_batch_gives_the_same_map(net, x):
    assert A.ig_internal_batch(net, x, 32) == 32  # a small input: both noisy copies' path points at once
    one_batch = A.integrated_gradients(net, x, 3, n_steps=16, nt_samples=2)  # one pass of 32 images
    in_fours = A.integrated_gradients(net, x, 3, n_steps=16, nt_samples=2, internal_batch_size=4)
    np.testing.assert_allclose(one_batch, in_fours, rtol=1e-4, atol=1e-5)
    assert A.ig_internal_batch(net, x, 16, budget_bytes=1) == 1  # a tight budget: one point at a time


def test_a_channels_last_net_gives_the_same_map_as_a_contiguous_one(net, x):
    # gnet.load puts a CPU net's weights in channels_last (gnet.device.memory_format).
    channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    assert channels_last.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    contiguous = A.integrated_gradients(net, x, 3, n_steps=8, nt_samples=2)
    fast = A.integrated_gradients(channels_last, x, 3, n_steps=8, nt_samples=2)
    # Another summation order in the convolutions: float32 differences, a few 1e-3 of the map's scale at most.
    np.testing.assert_allclose(fast, contiguous, atol=1e-2)
    assert float(np.abs(fast - contiguous).mean()) < 1e-3


def test_ig_stops_when_progress_says_so(net, x):
    seen: list[float] = []

    def stop_after_first(done: float) -> bool:
        seen.append(done)
        return False

    with pytest.raises(A.Stopped, match="after 1 of 3"):  # a given internal batch: one noisy copy at a time
        A.integrated_gradients(net, x, 0, n_steps=4, nt_samples=3, internal_batch_size=4, progress=stop_after_first)
    assert seen == [pytest.approx(1 / 3)]
    assert not modules_with_hooks(net)


def test_grad_cam_starts_on_the_deepest_module_the_head_reads_with_maps_of_4x4_or_more():
    from gnet.net.layers import INCEPTION_MODULES

    net = googlenet(num_classes=10).eval()

    def shapes(size: int) -> dict[str, tuple[int, ...]]:
        taps: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            net(torch.zeros(1, 3, size, size), taps=taps)
        return {m: tuple(taps[m].shape[1:]) for m in INCEPTION_MODULES}

    small, paper = shapes(64), shapes(224)
    assert (small["inception4e"][1], small["inception5a"][1], paper["inception5b"][1]) == (4, 2, 7)
    assert [A.grad_cam_module(h, small) for h in ("main", "aux1", "aux2")] == ["inception4e", "inception4a",
                                                                                "inception4d"]
    assert A.grad_cam_module("main", paper) == "inception5b"
    # Every map under 4 x 4 (a 32 px input): the deepest module the head reads, as before.
    assert A.grad_cam_module("aux2", {m: (c, 1, 1) for m, (c, _, _) in small.items()}) == "inception4d"


def test_the_drawn_map_blends_the_stops_over_the_image():
    from gnet.inspect.drawing import OVERLAY_STOPS, overlay_image

    rng = np.random.default_rng(0)
    image = rng.random((6, 5, 3))
    heat = np.zeros((6, 5), np.float32)
    # Nothing found: the image as it was, rounded to bytes.
    np.testing.assert_array_equal(overlay_image(image, heat), np.round(image * 255).astype(np.uint8))
    heat[1, 2], heat[4, 4], heat[2, 0] = 2.0, 0.5, 1.2  # the peak, a quarter and 0.6 of it: each a stop
    drawn = overlay_image(image, heat).astype(float)
    for (r, c), (_, colour, alpha) in zip(((4, 4), (2, 0), (1, 2)), OVERLAY_STOPS[1:]):
        expected = (image[r, c] * (1 - alpha) + np.array(colour) / 255 * alpha) * 255
        np.testing.assert_allclose(drawn[r, c], expected, atol=0.5)
    np.testing.assert_array_equal(drawn[0, 0], np.round(image[0, 0] * 255))  # zero stays see-through
    with pytest.raises(ValueError, match="same size"):
        overlay_image(image, heat[:3])


def test_evidence_elsewhere_names_the_branches_in_a_sentence():
    from gnet.inspect.attributions import evidence_elsewhere

    assert evidence_elsewhere("inception4e", []) == "no other branch of inception4e does either"
    assert evidence_elsewhere("inception4e", ["5x5"]) == "on inception4e, 5x5 does"
    assert evidence_elsewhere("inception4e", ["1x1", "pool_proj"]) == "on inception4e, 1x1 and pool_proj do"
    assert evidence_elsewhere("inception3a", ["1x1", "3x3", "5x5"]) == "on inception3a, 1x1, 3x3 and 5x5 do"
