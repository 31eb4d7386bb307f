"""gnet.inspect.gradients: norms against plain autograd, one pass = four passes, the aux effect, clean-up."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from gnet.cli import main as cli_main
from gnet.data.fashion_mnist import fashion_mnist_dir
from gnet.inspect.gradients import (
    COLUMNS,
    LOSSES,
    VARIANT_COLUMNS,
    aux_ratio,
    compare_variants,
    layer_gradients,
)
from gnet.inspect.grad_norms import gram_pays, norms_per_loss
from gnet.inspect.probe import capture
from gnet.net.layers import WEIGHT_LAYERS, point, submodule
from gnet.net.losses import AUX_WEIGHT, head_losses
from gnet.net.model import googlenet
from gnet.weights.loader import ASSETS_DIR
from tests.conftest import modules_with_hooks

SIZE = 32  # smallest input GoogLeNet takes; keeps every test well under a second of compute


def _net(*, batch_norm: bool = True, init: str = "trunc_normal"):
    return googlenet(num_classes=10, batch_norm=batch_norm, branch5x5_kernel=5, init=init, seed=0)


def _batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, SIZE, SIZE, generator=g), torch.tensor([3, 7][:n])


def _separate(net, x, y, loss_name: str, *, training: bool, seed: int | None = None):
    """One full forward + backward for one loss, the plain way: {layer: (weight norm, activation norm)}."""
    layers = {p.name: submodule(net, p.name) for p in WEIGHT_LAYERS}
    net.train(training)
    if seed is not None:
        torch.manual_seed(seed)
    with capture(net, layers, detach=False) as outputs:
        out = net(x)
    losses = head_losses(out, y)
    losses["combined"] = losses["total"]
    tensors = [m.weight for m in layers.values()] + [outputs[name] for name in layers]
    grads = torch.autograd.grad(losses[loss_name], tensors, allow_unused=True)
    norm = [0.0 if g is None else float(g.double().norm()) for g in grads]
    n = len(layers)
    return {name: (norm[i], norm[n + i]) for i, name in enumerate(layers)}


def _norm(result, layer: str, loss: str, quantity: str = "weight") -> float:
    table = result.table(quantity).set_index("layer")
    return float(table.loc[layer, loss])


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
        assert _norm(result, "inception3b.3x3.conv", loss_name) == pytest.approx(float(g.double().norm()), rel=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_four_losses_from_one_pass_equal_four_separate_passes(training):
    net = _net()
    x, y = _batch()
    # Training mode: batch statistics and dropout; the same seed gives the same dropout masks.
    result = layer_gradients(net, x, y, training=training, seed=5)
    weight, activation = (result.table(q).set_index("layer") for q in ("weight", "activation"))
    for loss_name in LOSSES:
        expected = _separate(net, x, y, loss_name, training=training, seed=5)
        for name, (w, a) in expected.items():
            assert weight.loc[name, loss_name] == pytest.approx(w, rel=1e-4, abs=1e-30), (loss_name, name)
            assert activation.loc[name, loss_name] == pytest.approx(a, rel=1e-4, abs=1e-30), (loss_name, name)


def test_unreached_layers_have_zero_norm_and_rows_are_in_depth_order():
    result = layer_gradients(_net(), *_batch(), training=False)
    table = result.table("weight")
    assert list(table["depth"]) == list(range(len(WEIGHT_LAYERS)))
    assert list(table["layer"]) == [p.name for p in WEIGHT_LAYERS]
    assert table["layer"].iloc[0] == "conv1.conv" and table["layer"].iloc[-1] == "fc"
    assert _norm(result, "aux1.fc2", "main") == 0.0  # main loss never flows into the aux heads
    assert _norm(result, "inception5b.1x1.conv", "aux1") == 0.0  # aux1 branches off before inception4b
    assert _norm(result, "aux1.fc2", "aux1") > 0.0
    assert set(table["kind"]) == {"stem", "inception", "aux", "classifier"}
    reached = result.norms[result.norms["norm"] > 0]
    for layer, loss in reached[["layer", "loss"]].itertuples(index=False):  # a loss reaches what gnet.net.layers says
        assert loss == "combined" or loss in point(layer).heads, (layer, loss)


def test_aux_losses_raise_early_gradients_without_batch_norm():
    x, y = _batch()
    result = layer_gradients(_net(batch_norm=False), x, y)
    for quantity in ("weight", "activation"):
        for row in result.table(quantity).head(3).to_dict(orient="records"):  # conv1..conv3, the stem
            assert row["combined"] > row["main"] > 0, (quantity, row["layer"])


def test_dropout_off_makes_training_mode_independent_of_the_seed():
    net, (x, y) = _net(), _batch()
    a = layer_gradients(net, x, y, dropout=False, seed=1)
    b = layer_gradients(net, x, y, dropout=False, seed=2)
    assert a.norms.equals(b.norms) and a.variant["dropout"] is False
    assert not layer_gradients(net, x, y, seed=1).norms.equals(a.norms)  # dropout on: the masks matter


def test_targets_default_to_the_main_prediction():
    net = _net()
    x, _ = _batch()
    predicted = net.eval()(x).main.argmax(1)
    by_default = layer_gradients(net, x, training=False)
    explicit = layer_gradients(net, x, predicted, training=False)
    assert by_default.variant["targets"] == "predicted" and explicit.variant["targets"] == "labels"
    assert by_default.norms.equals(explicit.norms)


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
    assert len(frame) == len(WEIGHT_LAYERS) * len(LOSSES) * 2
    assert list(frame.columns) == list(COLUMNS)
    assert frame.dtypes.to_dict() == frame.astype(COLUMNS).dtypes.to_dict()  # typed columns, as declared
    assert str(frame["depth"].dtype) == "int64" and str(frame["norm"].dtype) == "float64"
    assert set(frame["quantity"]) == {"weight", "activation"}
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"variant", "losses", "layers", "activation"}
    assert set(data["layers"][0]) == {"name", "depth", "kind", *LOSSES}
    assert data["layers"][5]["main"] == frame[
        (frame["depth"] == 5) & (frame["quantity"] == "weight") & (frame["loss"] == "main")
    ]["norm"].item()
    assert data["losses"]["combined"] == pytest.approx(
        data["losses"]["main"] + AUX_WEIGHT * (data["losses"]["aux1"] + data["losses"]["aux2"])
    )


def test_compare_variants_and_aux_ratio():
    x, y = _batch()
    loaded = _net()
    frame = compare_variants(x, y, loaded_net=loaded, inits=("trunc_normal",))
    assert set(frame["variant"]) == {"loaded", "no_bn", "bn"}
    assert list(frame.columns) == [*VARIANT_COLUMNS, *COLUMNS]
    ratios = aux_ratio(frame)
    assert "aux" not in set(ratios["kind"])  # main does not reach the aux heads: no ratio there
    weight = ratios[ratios["quantity"] == "weight"]
    conv1 = weight[weight["layer"] == "conv1.conv"].set_index("variant")["ratio"]
    assert conv1["no_bn"] > 1.0
    alone = layer_gradients(loaded, x, y).norms  # each variant's rows are its own layer_gradients table
    rows = frame[frame["variant"] == "loaded"][list(COLUMNS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, alone)
    with pytest.raises(ValueError):
        compare_variants(x, inits=("orthogonal",))


def test_cli_json_on_a_fresh_net(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    code = cli_main(["gradients", str(photo), "--no-batch-norm", "--input-size", "32", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"]["config"]["batch_norm"] is False
    assert data["variant"]["targets"] == "predicted"
    assert data["layers"][0]["name"] == "conv1.conv"


def test_cli_table_and_user_errors(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    assert cli_main(["gradients", str(photo), "--init", "xavier", "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "conv1.conv" in out and "combined" in out and "e-" in out
    assert cli_main(["gradients", str(photo), "--weights", "random", "--init", "xavier"]) == 2
    assert cli_main(["gradients", "no-such-file.png", "--no-batch-norm"]) == 2
    assert "error:" in capsys.readouterr().err


def test_cli_compare_csv(capsys):
    photo = ASSETS_DIR / "samples" / "photos" / "coffee.jpg"
    args = ["gradients", str(photo), "--compare", "--init", "trunc_normal", "--input-size", "64", "--csv"]
    assert cli_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join([*VARIANT_COLUMNS, *COLUMNS])
    assert len(lines) == 1 + 2 * len(LOSSES) * 2 * 64  # no_bn and bn, 2 quantities, 64 conv/linear layers
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


def test_tiny_gradients_keep_their_digits():
    """float32 squares of 1e-22 are denormal: such tensors are normed in float64, the rest in one fused pass."""
    from gnet.inspect.grad_norms import tensor_norms

    tiny = torch.full((1000,), 1e-22)
    usual = torch.randn(50, 50)
    norms = tensor_norms([tiny, None, usual])
    assert norms[0] == float(tiny.double().norm())  # exact, not float32's 3.13e-21
    assert norms[1] == 0.0
    assert norms[2] == pytest.approx(float(usual.double().norm()), rel=1e-6)


def test_tidy_table_equals_the_row_by_row_definition_and_leaves_its_template_alone():
    from gnet.inspect.gradients import _tidy, _tidy_rows

    g = torch.Generator().manual_seed(3)
    n = 2 * len(WEIGHT_LAYERS)
    norms = {loss: torch.rand(n, generator=g, dtype=torch.float64).tolist() for loss in LOSSES}
    first = _tidy(norms)
    pd.testing.assert_frame_equal(first, _tidy_rows(norms))
    first.loc[0, "norm"] = -1.0  # a caller editing its table
    first["layer"] = "edited"
    pd.testing.assert_frame_equal(_tidy(norms), _tidy_rows(norms))


def test_linear_weight_norms_from_gram_matrices_equal_the_gradients_norms():
    """A linear layer reached by all three heads (so the combined norm is a sum's, not a rescaled one's)."""
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(256, 128)
    x = torch.randn(4, 256, generator=g)
    assert gram_pays(layer, layer(x)) and not gram_pays(torch.nn.Linear(256, 3), torch.zeros(4, 3))

    def norms(gram: bool) -> dict[str, list[float]]:
        y = layer(x)
        losses = {h: (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(i))).sum()
                  for i, h in enumerate(("main", "aux1", "aux2"))}
        return norms_per_loss(losses, [layer.weight, y], {0: (1, layer, x)} if gram else None)

    direct, from_gram = norms(False), norms(True)
    for loss in LOSSES:
        assert from_gram[loss][0] == pytest.approx(direct[loss][0], rel=1e-6), loss
        assert from_gram[loss][1] == direct[loss][1]  # the output's norm is untouched


@pytest.mark.parametrize(
    "conv, channels_last",
    [
        (torch.nn.Conv2d(6, 5, 1), False),  # a 1x1 convolution: its input's positions are the rows
        (torch.nn.Conv2d(6, 5, 3, padding=1), True),  # patches of a padded 3x3, in the CPU's layout
        (torch.nn.Conv2d(6, 5, (3, 2), stride=2, padding=(1, 0), dilation=(1, 2)), False),
    ],
)
def test_convolution_weight_norms_from_gram_matrices_equal_the_gradients_norms(conv, channels_last):
    """In float64, where the two routes must agree to rounding; the norm of a sum (all three heads) included."""
    conv = conv.double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 5, 6, generator=g, dtype=torch.float64)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    y = conv(x)
    assert gram_pays(conv, y) is False  # too small to pay here: the route is forced below

    def norms(gram: bool) -> dict[str, list[float]]:
        out = conv(x)
        losses = {h: (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(i), dtype=out.dtype)).sum()
                  for i, h in enumerate(("main", "aux1", "aux2"))}
        return norms_per_loss(losses, [conv.weight, out], {0: (1, conv, x)} if gram else None)

    direct, from_gram = norms(False), norms(True)
    for loss in LOSSES:
        assert from_gram[loss][0] == pytest.approx(direct[loss][0], rel=1e-10), loss
        assert from_gram[loss][1] == direct[loss][1]


def test_only_plain_convolutions_and_linear_layers_take_the_gram_route():
    x = torch.randn(8, 832, 2, 2)
    wide = torch.nn.Conv2d(832, 384, 1)
    assert gram_pays(wide, wide(x))  # 32 rows against 832 x 384: inception5b's 1x1 at 64 px
    assert not gram_pays(torch.nn.Conv2d(832, 384, 1, groups=2), torch.zeros(8, 384, 2, 2))
    assert not gram_pays(torch.nn.Conv2d(832, 384, 3, padding="same"), torch.zeros(8, 384, 2, 2))
    assert not gram_pays(torch.nn.Conv2d(832, 384, 3, padding=1, padding_mode="reflect"), torch.zeros(8, 384, 2, 2))
    assert not gram_pays(torch.nn.Conv2d(832, 384, 1), torch.zeros(8, 384, 28, 28))  # 28 x 28 positions per image
