import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gnet
from gnet.inspect.probe import capture, capture_points
from gnet.net.model import BRANCHES, INCEPTION_MODULES
from tests.conftest import make_loaded, modules_with_hooks


def _image(seed: int, size: int = 80) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_heads_match_a_manual_forward(tiny_loaded):
    img = _image(0)
    a = gnet.analyze(tiny_loaded, img, top=3)
    x = tiny_loaded.transform(img).unsqueeze(0)
    with torch.no_grad():
        out = tiny_loaded.net(x)
    for head in ("main", "aux1", "aux2"):
        p = F.softmax(getattr(out, head)[0], -1)
        torch.testing.assert_close(a.heads[head].probs, p)
        top = torch.topk(p, 3)
        assert [pr.index for pr in a.heads[head].top] == top.indices.tolist()
        assert a.heads[head].top[0].label == tiny_loaded.classes[int(top.indices[0])]
        assert a.heads[head].entropy == pytest.approx(float(-(p * p.log()).sum()), rel=1e-5)
        kl = float((F.softmax(out.main[0], -1) * (F.log_softmax(out.main[0], -1) - p.log())).sum())
        assert a.heads[head].kl_to_main == pytest.approx(kl, abs=1e-6)
        assert a.heads[head].agrees_with_main == (int(getattr(out, head)[0].argmax()) == int(out.main[0].argmax()))
    assert a.heads["main"].kl_to_main == pytest.approx(0.0, abs=1e-6)
    assert [h.trained for h in a.heads.values()] == [True, True, False]


def test_branches_match_a_manual_forward(tiny_loaded):
    img = _image(1)
    a = gnet.analyze(tiny_loaded, img)
    net = tiny_loaded.net
    x = tiny_loaded.transform(img).unsqueeze(0)
    with torch.no_grad():
        h = net.maxpool2(net.lrn2(net.conv3(net.conv2(net.lrn1(net.maxpool1(net.conv1(x)))))))
        expected = {b: m(h)[0] for b, m in net.inception3a.branches.items()}
        out3a = net.inception3a(h)[0]
    assert list(a.modules) == list(INCEPTION_MODULES)
    m = a.modules["inception3a"]
    assert m.output_shape == tuple(out3a.shape)
    for b in BRANCHES:
        r = m.branches[b]
        torch.testing.assert_close(r.activation, expected[b])
        assert r.mean == pytest.approx(float(expected[b].mean()), rel=1e-5)
        assert r.zero_fraction == pytest.approx(float((expected[b] == 0).float().mean()))
        assert r.energy_share == pytest.approx(float(expected[b].square().sum() / out3a.square().sum()), rel=1e-4)
        means = expected[b].mean(dim=(1, 2))
        assert r.top_channels[0] == int(means.argmax())
    for mod in a.modules.values():
        assert sum(r.energy_share for r in mod.branches.values()) == pytest.approx(1.0)
        assert sum(r.channels for r in mod.branches.values()) == mod.output_shape[0]


def test_everything_returned_is_detached_and_on_cpu(tiny_loaded):
    a = gnet.analyze(tiny_loaded, _image(2))
    tensors = [a.input, *a.stem.values()]
    tensors += [r.activation for m in a.modules.values() for r in m.branches.values()]
    tensors += [h.logits for h in a.heads.values()] + [h.probs for h in a.heads.values()]
    assert all(t.device.type == "cpu" and not t.requires_grad for t in tensors)
    assert a.image.shape == (64, 64, 3) and 0 <= a.image.min() and a.image.max() <= 1
    assert set(a.stem) == {"conv1", "maxpool1", "conv2", "conv3", "maxpool2"}
    assert not modules_with_hooks(tiny_loaded.net)


def test_json_shape(tiny_loaded):
    j = gnet.analyze(tiny_loaded, _image(3), top=4).to_dict()
    assert set(j) >= {"model", "device", "heads", "modules", "timing_ms"}
    assert set(j["heads"]) == {"main", "aux1", "aux2"}
    assert len(j["heads"]["aux2"]) == 4 and set(j["heads"]["main"][0]) == {"index", "label", "prob"}
    stats = j["modules"]["inception5b"]["branches"]["pool_proj"]
    assert {"channels", "mean", "std", "zero_fraction", "energy_share"} <= set(stats)
    assert stats["channels"] == 128


def test_hooks_removed_and_mode_restored_when_forward_raises(tiny_loaded):
    net = tiny_loaded.net
    net.train()

    def boom(*_):
        raise RuntimeError("layer failed")

    handle = net.inception4b.register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="layer failed"):
            gnet.analyze(tiny_loaded, _image(4))
    finally:
        handle.remove()
    assert not modules_with_hooks(net)
    assert net.training and all(m.training for m in net.modules())


def test_capture_removes_hooks_on_error(tiny_loaded):
    net = tiny_loaded.net
    with pytest.raises(ValueError):
        with capture(net, capture_points(net)):
            raise ValueError
    assert not modules_with_hooks(net)


def test_capture_records_what_each_point_read_when_asked(tiny_loaded):
    net = tiny_loaded.net
    points = {"conv2": net.conv2, "inception3a": net.inception3a}
    x = torch.randn(1, 3, 64, 64)
    read: dict[str, torch.Tensor] = {}
    with torch.no_grad(), capture(net, points, inputs=read) as wrote:
        net(x)
    assert set(read) == set(wrote) == set(points)
    torch.testing.assert_close(net.conv2(read["conv2"]), wrote["conv2"])  # each output computed from its input
    torch.testing.assert_close(net.inception3a(read["inception3a"]), wrote["inception3a"])
    assert not read["conv2"].requires_grad and not modules_with_hooks(net)


def test_eight_threads_on_one_shared_model_match_single_thread_results():
    loaded = make_loaded(seed=5)
    images = [_image(10 + i) for i in range(8)]
    expected = [gnet.analyze(loaded, im) for im in images]
    results: list = [None] * 8
    errors: list = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = gnet.analyze(loaded, images[i])
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        torch.testing.assert_close(got.heads["main"].logits, want.heads["main"].logits, rtol=0, atol=0)
        for mod in INCEPTION_MODULES:
            for b in BRANCHES:
                torch.testing.assert_close(
                    got.modules[mod].branches[b].activation, want.modules[mod].branches[b].activation, rtol=0, atol=0
                )
    assert not modules_with_hooks(loaded.net)


def test_predict_matches_analyze(tiny_loaded):
    images = [_image(20), _image(21), _image(22)]
    probs = gnet.predict(tiny_loaded, images, batch_size=2)
    assert probs["aux1"].shape == (3, 10)
    for i, im in enumerate(images):
        torch.testing.assert_close(probs["main"][i], gnet.analyze(tiny_loaded, im).heads["main"].probs)


def test_bad_image_is_an_image_error(tiny_loaded):
    with pytest.raises(gnet.ImageError):
        gnet.analyze(tiny_loaded, b"definitely not an image")


def test_statistics_match_torch_reductions(tiny_loaded):
    a = gnet.analyze(tiny_loaded, _image(30))
    for mod in a.modules.values():
        for r in mod.branches.values():
            x = r.activation.double()
            assert r.mean == pytest.approx(float(x.mean()), rel=1e-5, abs=1e-9)
            assert r.std == pytest.approx(float(x.std()), rel=1e-4, abs=1e-9)
            assert r.energy == pytest.approx(float(x.square().sum()), rel=1e-5)
            assert r.zero_fraction == pytest.approx(float((x == 0).double().mean()))
            means = x.mean(dim=(1, 2))
            order = torch.sort(-means, stable=True).indices[: len(r.top_channels)].tolist()
            assert r.top_channels == order  # strongest first, ties in channel order
            assert r.top_channel_means == pytest.approx(means[order].tolist(), rel=1e-5, abs=1e-9)


def test_branch_statistics_rank_like_a_stable_sort_in_either_layout_with_ties_and_signs():
    """The compiled pass on made-up outputs: every channel constant, so its sum is known, with zeros, -0.0,
    ties and negatives; modules alternately channels_last and contiguous (both loops), one in float64."""
    from gnet.inspect.analysis import TOP_CHANNELS, results
    from gnet.net.layers import branch_channels

    rng = np.random.default_rng(0)
    acts = {}
    for i, m in enumerate(INCEPTION_MODULES):
        values = rng.normal(size=sum(branch_channels(m, b) for b in BRANCHES)).astype(np.float32)
        if i < 5:
            values = -np.abs(values)  # zeros and negatives rank into the top
        values[::3] = 0.0  # ties, as dead channels give
        values[1::7] = -0.0
        values[2::11] = values[5]  # ties between non-zero values
        out = torch.from_numpy(values)[None, :, None, None].expand(1, -1, 2, 3).clone()
        if i % 2:
            out = out.contiguous(memory_format=torch.channels_last)
        acts[m] = out.double() if i == 4 else out
    got, _ = results(acts, torch.zeros(3, 10), [str(c) for c in range(10)], 5, {})
    for m, out in acts.items():
        start = 0
        for b in BRANCHES:
            r = got[m].branches[b]
            x = out[0, start : start + r.channels].double()
            start += r.channels
            means = x.mean(dim=(1, 2)).numpy()
            want = np.argsort(-means, kind="stable")[:TOP_CHANNELS]
            assert r.top_channels == want.tolist(), (m, b)
            assert r.top_channel_means == pytest.approx(means[want].tolist(), rel=1e-6, abs=1e-12)
            assert r.mean == pytest.approx(float(x.mean()), rel=1e-6, abs=1e-12)
            assert r.std == pytest.approx(float(x.std()), rel=1e-6, abs=1e-12)
            assert r.zero_fraction == pytest.approx(float((x == 0).double().mean()))
            assert r.energy == pytest.approx(float(x.square().sum()), rel=1e-6)


def test_a_dead_module_has_zero_shares_and_statistics(tiny_loaded):
    """A module whose every channel is zero (all branches dead) gets shares of 0, not a division by zero."""
    import warnings

    from gnet.inspect.analysis import results

    a = gnet.analyze(tiny_loaded, _image(31))
    acts = {m: next(iter(r.branches.values())).module_output.clone() for m, r in a.modules.items()}
    acts["inception4b"].zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value in divide" would be one
        got, _ = results(acts, torch.stack([h.logits for h in a.heads.values()]), tiny_loaded.classes, 5, {})
    dead = got["inception4b"].branches.values()
    assert [(r.energy_share, r.mean, r.std, r.zero_fraction) for r in dead] == [(0.0, 0.0, 0.0, 1.0)] * len(BRANCHES)
    live = got["inception4a"].branches.values()
    assert sum(r.energy_share for r in live) == pytest.approx(1.0)
    for m in INCEPTION_MODULES:
        if m != "inception4b":
            for b in BRANCHES:
                assert got[m].branches[b].energy_share == pytest.approx(a.modules[m].branches[b].energy_share, rel=1e-6)


def test_head_results_rank_ties_in_class_order_and_match_float64(tiny_loaded):
    from gnet.inspect.analysis import results

    logits = {"main": torch.tensor([1.0, 3.0, 3.0, -2.0, 3.0]), "aux1": torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5]),
              "aux2": torch.tensor([-1.0, 2.0, 0.0, 2.0, 40.0], dtype=torch.float64)}
    a = gnet.analyze(tiny_loaded, _image(32))
    acts = {m: next(iter(r.branches.values())).module_output for m, r in a.modules.items()}
    _, got = results(acts, torch.stack([z.float() for z in logits.values()]), list("abcde"), 4, {"main": True})
    log_main = torch.log_softmax(logits["main"].double(), 0)
    for h, z in logits.items():
        log_p = torch.log_softmax(z.double(), 0)
        p = log_p.exp()
        want = np.argsort(-p.numpy(), kind="stable")[:4]
        assert [q.index for q in got[h].top] == want.tolist(), h
        assert [q.prob for q in got[h].top] == pytest.approx(p[want].tolist(), rel=1e-12)
        assert got[h].entropy == pytest.approx(float(-(p * log_p).sum()), rel=1e-12)
        assert got[h].kl_to_main == pytest.approx(float((log_main.exp() * (log_main - log_p)).sum()), rel=1e-9, abs=1e-15)
        torch.testing.assert_close(got[h].probs, p.float())
    assert [got[h].agrees_with_main for h in ("main", "aux1", "aux2")] == [True, False, False]
    assert (got["main"].trained, got["aux1"].trained) == (True, False)
