import pytest
import torch
from torchvision.models import googlenet as tv_googlenet

from gnet.net.model import BRANCHES, INCEPTION_MODULES, googlenet


def test_torchvision_state_dict_loads_unchanged_and_gives_identical_logits():
    tv = tv_googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True).eval()
    net = googlenet(transform_input=True).eval()
    net.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = tv(x)
        out = net(x)
    torch.testing.assert_close(out.main, expected, rtol=0, atol=0)


def test_aux_heads_match_torchvision_in_training_mode():
    tv = tv_googlenet(weights=None, aux_logits=True, init_weights=True)
    net = googlenet()
    net.load_state_dict(tv.state_dict())
    for m in (tv, net):  # no dropout so both passes are deterministic
        m.train()
        for d in m.modules():
            if isinstance(d, torch.nn.Dropout):
                d.p = 0.0
    x = torch.randn(2, 3, 96, 96)
    expected = tv(x)
    out = net(x)
    torch.testing.assert_close(out.aux1, expected.aux_logits1)
    torch.testing.assert_close(out.aux2, expected.aux_logits2)


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("kernel", [3, 5])
def test_variants_compute_all_three_heads_in_eval_mode(batch_norm, kernel):
    net = googlenet(num_classes=7, batch_norm=batch_norm, branch5x5_kernel=kernel, seed=0).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 64))
    assert [t.shape for t in out] == [torch.Size([1, 7])] * 3
    conv5 = net.inception3a.branches["5x5"][1].conv
    assert conv5.kernel_size == (kernel, kernel)
    assert (net.conv1.conv.bias is None) == batch_norm
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    has_lrn = any(isinstance(m, torch.nn.LocalResponseNorm) for m in net.modules())
    assert has_bn == batch_norm and has_lrn == (not batch_norm)


def test_public_names():
    net = googlenet(num_classes=3)
    assert list(net.inception_modules()) == list(INCEPTION_MODULES)
    assert len(INCEPTION_MODULES) == 9
    assert list(net.inception3a.branches) == list(BRANCHES) == ["1x1", "3x3", "5x5", "pool_proj"]
    for name in ("conv1", "conv2", "conv3", "aux1", "aux2", "fc"):
        assert hasattr(net, name)


@pytest.mark.parametrize("init", ["trunc_normal", "xavier", "kaiming"])
def test_init_schemes_are_seeded_and_distinct(init):
    a = googlenet(init=init, seed=3).conv1.conv.weight
    b = googlenet(init=init, seed=3).conv1.conv.weight
    torch.testing.assert_close(a, b)
    std = a.std().item()
    fan_in = 3 * 7 * 7
    expected = {"trunc_normal": 0.01, "xavier": (2 / (fan_in + 64 * 49)) ** 0.5, "kaiming": (2 / fan_in) ** 0.5}[init]
    assert std == pytest.approx(expected, rel=0.1)


def test_seed_does_not_touch_global_rng():
    torch.manual_seed(1)
    before = torch.rand(1)
    torch.manual_seed(1)
    googlenet(seed=5)
    assert torch.equal(torch.rand(1), before)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="init"):
        googlenet(init="he")
    with pytest.raises(ValueError, match="kernel"):
        googlenet(branch5x5_kernel=7)


def test_taps_hold_what_forward_hooks_see_at_every_capture_point():
    """The forward's ``taps`` (what gnet.analyze reads) equal the hooks' view of capture_points, in depth order."""
    from gnet.inspect.probe import capture, capture_points

    net = googlenet(num_classes=5, batch_norm=False, seed=3).eval()
    x = torch.randn(2, 3, 64, 64)
    taps: dict[str, torch.Tensor] = {}
    with torch.no_grad(), capture(net, capture_points(net)) as hooked:
        out = net(x, taps=taps)
        plain = net(x)
    assert list(taps) == list(capture_points(net))
    for name, value in taps.items():
        assert torch.equal(value, hooked[name]), name
    torch.testing.assert_close(tuple(out), tuple(plain), rtol=0, atol=0)


@pytest.mark.parametrize("with_taps", [False, True])
def test_a_forward_without_taps_frees_each_output_once_read(with_taps):
    """Without ``taps`` nothing keeps conv1's output alive until the classifier runs (memory of large batches)."""
    import weakref

    net = googlenet(num_classes=5, seed=4).eval()
    refs, alive = [], []
    hooks = [net.conv1.register_forward_hook(lambda _m, _i, out: refs.append(weakref.ref(out))),
             net.fc.register_forward_pre_hook(lambda _m, _i: alive.append(refs[0]() is not None))]
    try:
        with torch.no_grad():
            net(torch.randn(1, 3, 64, 64), **({"taps": {}} if with_taps else {}))
    finally:
        for h in hooks:
            h.remove()
    assert alive == [with_taps]
