"""gnet.gradients: norms against plain autograd, one pass = four passes, the aux effect, clean-up."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gnet.__main__ import main as cli_main
from gnet.data import fashion_mnist_dir
from gnet.gradients import LOSSES, aux_ratio, compare_variants, layer_gradients
from gnet.model import googlenet
from gnet.probe import capture
from gnet.train import AUX_WEIGHT, head_losses, named_weight_layers
from gnet.weights import ASSETS_DIR
from tests.conftest import modules_with_hooks

SIZE = 32  # smallest input GoogLeNet takes; keeps every test well under a second of compute


def _net(*, batch_norm: bool = True, init: str = "trunc_normal"):
    return googlenet(num_classes=10, batch_norm=batch_norm, branch5x5_kernel=5, init=init, seed=0)


def _batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, SIZE, SIZE, generator=g), torch.tensor([3, 7][:n])


def _separate(net, x, y, loss_name: str, *, training: bool, seed: int | None = None):
    """One full forward + backward for one loss, the plain way: {layer: (weight norm, activation norm)}."""
    layers = named_weight_layers(net)
    net.train(training)
    if seed is not None:
        torch.manual_seed(seed)
    with capture(net, dict(layers), detach=False) as outputs:
        out = net(x)
    losses = head_losses(out, y)
    losses["combined"] = losses["total"]
    tensors = [m.weight for _, m in layers] + [outputs[name] for name, _ in layers]
    grads = torch.autograd.grad(losses[loss_name], tensors, allow_unused=True)
    norm = [0.0 if g is None else float(g.double().norm()) for g in grads]
    n = len(layers)
    return {name: (norm[i], norm[n + i]) for i, (name, _) in enumerate(layers)}


def test_norms_match_manual_autograd_for_one_layer():
    net = _net()
    x, y = _batch()
    result = layer_gradients(net, x, y, training=False)
    net.eval()
    out = net(x)
    for loss_name, loss in (
        ("main", F.cross_entropy(out.main, y)),
        ("combined", F.cross_entropy(out.main, y)
         + AUX_WEIGHT * (F.cross_entropy(out.aux1, y) + F.cross_entropy(out.aux2, y))),
    ):
        (g,) = torch.autograd.grad(loss, net.inception3b.branch2[1].conv.weight, retain_graph=True)
        row = next(r for r in result.layers if r["name"] == "inception3b.3x3")
        assert row["weight"][loss_name] == pytest.approx(float(g.double().norm()), rel=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_four_losses_from_one_pass_equal_four_separate_passes(training):
    net = _net()
    x, y = _batch()
    # Training mode: batch statistics and dropout; the same seed gives the same dropout masks.
    result = layer_gradients(net, x, y, training=training, seed=5)
    for loss_name in LOSSES:
        expected = _separate(net, x, y, loss_name, training=training, seed=5)
        for row in result.layers:
            w, a = expected[row["name"]]
            assert row["weight"][loss_name] == pytest.approx(w, rel=1e-4, abs=1e-30), (loss_name, row["name"])
            assert row["activation"][loss_name] == pytest.approx(a, rel=1e-4, abs=1e-30), (loss_name, row["name"])


def test_unreached_layers_have_zero_norm_and_rows_are_in_depth_order():
    result = layer_gradients(_net(), *_batch(), training=False)
    rows = {r["name"]: r for r in result.layers}
    assert [r["depth"] for r in result.layers] == list(range(len(result.layers)))
    assert result.layers[0]["name"] == "conv1" and result.layers[-1]["name"] == "fc"
    assert rows["aux1.fc2"]["weight"]["main"] == 0.0  # main loss never flows into the aux heads
    assert rows["inception5b.1x1"]["weight"]["aux1"] == 0.0  # aux1 branches off before inception4b
    assert rows["aux1.fc2"]["weight"]["aux1"] > 0.0
    assert {r["kind"] for r in result.layers} == {"stem", "inception", "aux", "classifier"}


def test_aux_losses_raise_early_gradients_without_batch_norm():
    x, y = _batch()
    result = layer_gradients(_net(batch_norm=False), x, y)
    for row in result.layers[:3]:  # conv1..conv3, the stem
        assert row["weight"]["combined"] > row["weight"]["main"] > 0, row["name"]
        assert row["activation"]["combined"] > row["activation"]["main"] > 0, row["name"]


def test_dropout_off_makes_training_mode_independent_of_the_seed():
    net, (x, y) = _net(), _batch()
    a = layer_gradients(net, x, y, dropout=False, seed=1)
    b = layer_gradients(net, x, y, dropout=False, seed=2)
    assert a.layers == b.layers and a.variant["dropout"] is False
    assert layer_gradients(net, x, y, seed=1).layers != a.layers  # dropout on: the masks matter


def test_targets_default_to_the_main_prediction():
    net = _net()
    x, _ = _batch()
    predicted = net.eval()(x).main.argmax(1)
    by_default = layer_gradients(net, x, training=False)
    explicit = layer_gradients(net, x, predicted, training=False)
    assert by_default.variant["targets"] == "predicted" and explicit.variant["targets"] == "labels"
    assert by_default.layers[0]["weight"] == explicit.layers[0]["weight"]


def test_net_is_left_as_it_was_even_when_the_forward_raises():
    net = _net()
    net.eval()
    net.aux1.train()  # a mixed mode must come back as it was
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    x, y = _batch()
    rng = torch.get_rng_state()
    layer_gradients(net, x, y, training=True)
    with pytest.raises(RuntimeError):
        layer_gradients(net, x[:, :1])  # one channel: conv1 raises
    assert not modules_with_hooks(net)
    assert not net.training and net.aux1.training and net.aux1.dropout.training and not net.dropout.training
    assert all(torch.equal(v, buffers[k]) for k, v in net.named_buffers())  # running stats untouched
    assert torch.equal(torch.get_rng_state(), rng)  # dropout's seeded draws did not move the caller's RNG
    assert all(p.grad is None for p in net.parameters())


def test_frame_and_json_shapes():
    result = layer_gradients(_net(), *_batch(), training=False)
    frame = result.to_frame()
    assert len(frame) == len(result.layers) * len(LOSSES) * 2
    assert set(frame["quantity"]) == {"weight", "activation"}
    data = json.loads(json.dumps(result.to_json()))
    assert set(data) == {"variant", "losses", "layers", "activation"}
    assert set(data["layers"][0]) == {"name", "depth", "kind", *LOSSES}
    assert data["losses"]["combined"] == pytest.approx(
        data["losses"]["main"] + AUX_WEIGHT * (data["losses"]["aux1"] + data["losses"]["aux2"])
    )


def test_compare_variants_and_aux_ratio():
    x, y = _batch()
    loaded = _net()
    frame = compare_variants(x, y, loaded_net=loaded, inits=("trunc_normal",))
    assert set(frame["variant"]) == {"loaded", "no_bn", "bn"}
    assert list(frame.columns) == [
        "variant", "batch_norm", "init", "loss", "layer", "depth", "kind", "weight_norm", "activation_norm"
    ]
    ratios = aux_ratio(frame)
    assert "aux" not in set(ratios["kind"])  # main does not reach the aux heads: no ratio there
    conv1 = ratios[ratios["layer"] == "conv1"].set_index("variant")["weight_ratio"]
    assert conv1["no_bn"] > 1.0
    with pytest.raises(ValueError):
        compare_variants(x, inits=("orthogonal",))


def test_cli_json_on_a_fresh_net(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    code = cli_main(["gradients", str(photo), "--no-batch-norm", "--input-size", "32", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"]["config"]["batch_norm"] is False
    assert data["variant"]["targets"] == "predicted"
    assert data["layers"][0]["name"] == "conv1"


def test_cli_table_and_user_errors(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    assert cli_main(["gradients", str(photo), "--init", "xavier", "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "combined" in out and "e-" in out
    assert cli_main(["gradients", str(photo), "--weights", "random", "--init", "xavier"]) == 2
    assert cli_main(["gradients", "no-such-file.png", "--no-batch-norm"]) == 2
    assert "error:" in capsys.readouterr().err


def test_cli_compare_csv(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    args = ["gradients", str(photo), "--compare", "--init", "trunc_normal", "--input-size", "64", "--csv"]
    assert cli_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "variant,batch_norm,init,loss,layer,depth,kind,weight_norm,activation_norm"
    assert len(lines) == 1 + 2 * len(LOSSES) * 64  # no_bn and bn, 64 conv/linear layers
    assert cli_main(["gradients", str(photo), "--compare", "--no-batch-norm"]) == 2


@pytest.mark.parametrize("compare", [False, True])
def test_cli_one_small_image_in_training_mode_is_a_user_error(capsys, compare):
    """Both paths share one check: batch norm on a lone 32 px image has one value per channel."""
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    args = ["gradients", str(photo), "--init", "trunc_normal", "--input-size", "32"]
    assert cli_main([*args, *(["--compare"] if compare else [])]) == 2
    assert capsys.readouterr().err.startswith("error: Batch norm in training mode needs more than one value")


@pytest.mark.skipif(not fashion_mnist_dir().is_dir(), reason="Fashion-MNIST is not installed")
def test_cli_defaults_to_labelled_fashion_mnist_test_images(capsys):
    assert cli_main(["gradients", "--no-batch-norm", "--batch-size", "2", "--json"]) == 0
    variant = json.loads(capsys.readouterr().out)["variant"]
    assert variant["targets"] == "labels" and variant["input_shape"] == [2, 3, 64, 64]
