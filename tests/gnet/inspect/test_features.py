"""Feature visualization: targets, determinism, the guard rules, and that it beats the best dataset example."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.models import GoogLeNet_Weights

from gnet.errors import TargetError
from gnet.inspect.examples import example_index
from gnet.inspect.features import (
    DIVERSITY,
    ClassTarget,
    activation,
    gram_similarity,
    objective,
    parse_target,
    visualize,
    visualize_many,
)
from gnet.inspect.probe import capture
from gnet.net.layers import ChannelTarget, parse_channel
from gnet.weights.card import LoadedModel
from gnet.weights.loader import load
from tests.conftest import TINY_CLASSES, make_loaded, modules_with_hooks


def test_targets_parse_to_channels_branches_and_head_classes():
    assert parse_target("inception4c.5x5:12", TINY_CLASSES) == ChannelTarget("inception4c", "5x5", 12)
    assert parse_target(" inception4c.5x5 ", TINY_CLASSES) == ChannelTarget("inception4c", "5x5", None)
    assert parse_target("aux1:C3", TINY_CLASSES) == ClassTarget("aux1", 3, "c3")
    assert parse_target("main:7", TINY_CLASSES) == ClassTarget("main", 7, "c7")
    assert parse_target("aux2:c0", TINY_CLASSES).name == "aux2:c0"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("aux3:c1", "HEAD one of main, aux1, aux2"),
        ("main:Sneaker", "choose one of c0, c1, c2"),
        ("main:10", "choose one of c0"),
        ("inception9z.5x5:1", "choose one of inception3a"),
        ("inception4c.5x5:64", "channels 0 to 63"),
        ("inception4c.7x7", "choose one of 1x1, 3x3, 5x5, pool_proj"),
        ("sneaker", "MODULE.BRANCH"),
    ],
)
def test_bad_targets_name_the_valid_choices_in_one_sentence(text, fragment):
    with pytest.raises(TargetError, match=fragment) as caught:
        parse_target(text, TINY_CLASSES)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message


def test_objectives_are_pre_relu_means_and_logits_activations_the_module_slice(tiny_loaded):
    net, x = tiny_loaded.net, torch.randn(2, 3, 64, 64)
    # The module, its '5x5' branch, and the batch norm before that branch's last ReLU.
    points = {"module": net.inception4c, "branch": net.inception4c.branch3, "pre": net.inception4c.branch3[1].bn}
    with torch.no_grad():
        with capture(net, points) as store:
            out = net(x)
        channel = parse_channel("inception4c.5x5:12")
        whole = parse_channel("inception4c.5x5")
        torch.testing.assert_close(objective(net, x, channel), store["pre"][:, 12].mean(dim=(1, 2)))
        torch.testing.assert_close(objective(net, x, whole), store["pre"].mean(dim=(1, 2, 3)))
        torch.testing.assert_close(activation(net, x, channel), store["branch"][:, 12].mean(dim=(1, 2)))
        torch.testing.assert_close(activation(net, x, channel), store["module"][:, 128 + 256 + 12].mean(dim=(1, 2)))
        torch.testing.assert_close(activation(net, x, whole), store["branch"].mean(dim=(1, 2, 3)))
        torch.testing.assert_close(objective(net, x, ClassTarget("aux2", 4, "c4")), out.aux2[:, 4])
        torch.testing.assert_close(activation(net, x, ClassTarget("main", 1, "c1")), out.main[:, 1])
    assert torch.equal(store["branch"], torch.relu(store["pre"]))


def test_a_visualization_is_deterministic_for_its_seed(tiny_loaded):
    a = visualize(tiny_loaded, "inception3a.3x3:5", steps=4, seed=3)
    b = visualize(tiny_loaded, "inception3a.3x3:5", steps=4, seed=3)
    c = visualize(tiny_loaded, "inception3a.3x3:5", steps=4, seed=4)
    assert (a.image == b.image).all() and a.trace == b.trace and a.objective == b.objective
    assert not (a.image == c.image).all()
    assert a.image.shape == (64, 64, 3) and 0 <= a.image.min() and a.image.max() <= 1
    assert len(a.trace) == 4 and a.input.shape == (1, 3, 64, 64)
    json.dumps(a.to_dict())


def test_gray_weights_get_a_gray_image_and_rgb_weights_a_colour_one():
    gray = visualize(make_loaded(), "main:c1", steps=2)
    assert (gray.image[..., 0] == gray.image[..., 1]).all() and (gray.image[..., 1] == gray.image[..., 2]).all()
    assert torch.equal(gray.input[:, 0], gray.input[:, 2])
    tiny = make_loaded()
    rgb = LoadedModel(net=tiny.net, card=tiny.card, transform=GoogLeNet_Weights.IMAGENET1K_V1.transforms(),
                      device=tiny.device, source="test")
    colour = visualize(rgb, "main:c1", steps=2)
    assert not (colour.image[..., 0] == colour.image[..., 2]).all()


def test_the_model_is_left_as_it_was_even_when_the_forward_fails(tiny_loaded, monkeypatch):
    net = tiny_loaded.net
    net.train()
    progress: list[float] = []
    visualize(tiny_loaded, "inception4a.pool_proj:2", steps=3, progress=progress.append)
    assert progress == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert net.training and not modules_with_hooks(net)
    assert all(p.grad is None for p in net.parameters())  # gradients went to the image only

    def broken(*_args):
        raise RuntimeError("a failing layer")

    monkeypatch.setattr(net.inception4a, "forward", broken)
    with pytest.raises(RuntimeError, match="a failing layer"):
        visualize(tiny_loaded, "inception4a.1x1:0", steps=2)
    assert net.training and not modules_with_hooks(net)


def test_bad_steps_are_refused(tiny_loaded):
    with pytest.raises(ValueError, match="steps"):
        visualize(tiny_loaded, "main:c0", steps=0)


@pytest.mark.parametrize("target", ["inception3b.3x3:17", "inception4c.5x5:12", "inception5a.1x1:200"])
def test_the_visualization_excites_its_channel_more_than_its_best_test_image(target):
    """On the bundled net, 128 steps (half the default) beat the best of the 10,000 test images (the shipped index)."""
    loaded = load("bundled", "cpu")
    index = example_index(loaded, build=False)
    if index is None:
        pytest.skip("Fashion-MNIST is not installed: the index's data key cannot be checked")
    channel = parse_channel(target)
    best = index.examples(channel, "mean")[0].value
    result = visualize(loaded, channel, steps=128)
    with torch.no_grad():
        again = float(activation(loaded.net.eval(), result.input, channel)[0])
    assert again == pytest.approx(result.activation, rel=1e-5)  # the final image, without transforms
    assert result.activation > best, f"{target}: visualization {result.activation:.4f} <= best test image {best:.4f}"



def test_one_batched_optimization_gives_each_target_its_own_image(tiny_loaded):
    targets = ["inception3b.3x3:4", "inception4a.1x1:9", "inception3b.pool_proj:0"]
    images = visualize_many(tiny_loaded, targets, steps=6, seed=1)
    assert [v.target for v in images] == targets
    net = tiny_loaded.net.eval()
    for v in images:
        with torch.no_grad():
            assert float(activation(net, v.input, parse_channel(v.target))[0]) == pytest.approx(v.activation, rel=1e-5)
        assert len(v.trace) == 6
    again = visualize_many(tiny_loaded, targets, steps=6, seed=1)
    assert all((a.image == b.image).all() for a, b in zip(images, again))
    assert not modules_with_hooks(net)


def test_the_diversity_objective_makes_the_images_less_alike(tiny_loaded):
    """On the bundled net (a random net's Gram matrices are all alike): 16 steps took 0.96 to 0.92 when measured."""
    loaded = load("bundled", "cpu")
    same = ["inception4a.3x3:7"] * 4
    plain = visualize_many(loaded, same, steps=16, seed=0)
    diverse = visualize_many(loaded, same, steps=16, seed=0, diversity=DIVERSITY)
    before = gram_similarity(loaded, plain, "inception4a")
    after = gram_similarity(loaded, diverse, "inception4a")
    assert after < before - 0.02, (before, after)
    with pytest.raises(ValueError, match="at least two"):
        visualize_many(tiny_loaded, same[:1], steps=2, diversity=1.0)
