import json
import pickle

import pytest
import torch
from torchvision.models import googlenet as tv_googlenet

import gnet
from gnet.errors import CheckpointError, WeightsError, WeightsNotFoundError
from gnet.net.model import googlenet
from gnet.weights import loader as W


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return W.imagenet_cache_path()


@pytest.fixture(scope="module")
def tv_net():
    return tv_googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True).eval()


def test_imagenet_is_read_from_the_hub_cache(hub, tv_net):
    assert hub.name.startswith("googlenet-") and hub.parent.name == "checkpoints"
    hub.parent.mkdir(parents=True)
    torch.save(tv_net.state_dict(), hub)
    loaded = gnet.load("imagenet", "cpu")
    assert loaded.net.config.transform_input
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x).main, tv_net(x))
    assert loaded.card.untrained_heads == ["aux1", "aux2"]
    assert "NOT trained" in " ".join(loaded.card.notes)
    assert len(loaded.classes) == 1000 and loaded.classes[0] == "tench"
    assert W.resolve_source("auto") == "imagenet"


def test_imagenet_missing_offline_names_file_and_cache(hub):
    with pytest.raises(WeightsNotFoundError) as e:
        gnet.load("imagenet")
    msg = str(e.value)
    assert hub.name in msg and str(hub.parent) in msg and "\n" not in msg


def test_imagenet_failed_download_is_a_named_error(hub, monkeypatch):
    monkeypatch.delenv("GNET_OFFLINE")

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsNotFoundError, match="could not be downloaded"):
        gnet.load("imagenet")


def test_auto_falls_back_to_bundled_without_imagenet(hub):
    assert W.resolve_source("auto") == "bundled"


def test_random_is_seeded_and_untrained():
    a, b = gnet.load("random", "cpu"), gnet.load("random", "cpu")
    torch.testing.assert_close(a.net.fc.weight, b.net.fc.weight)
    assert a.card.untrained_heads == ["main", "aux1", "aux2"]


def test_unknown_source_name():
    with pytest.raises(WeightsError, match="Unknown weights 'bogus'"):
        gnet.load("bogus")


def _checkpoint(tmp_path, obj, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_trainer_checkpoint_round_trip_with_card(tmp_path):
    net = googlenet(num_classes=10, batch_norm=False, branch5x5_kernel=5, seed=1)
    card = {
        "name": "mine",
        "classes": [f"k{i}" for i in range(10)],
        "input_size": 64,
        "preprocessing": {"mean": [0.3], "std": [0.35]},
        "heads_trained": {"main": True, "aux1": True, "aux2": True},
        "accuracy": {"main": 0.9},
    }
    sd = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = _checkpoint(tmp_path, {"format": "gnet-checkpoint", "config": net.config.to_dict(), "state_dict": sd, "card": card})
    loaded = gnet.load(str(path), "cpu")
    assert loaded.net.config == net.config
    assert loaded.net.fc.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.net.fc.weight, net.fc.weight.half().float())
    assert loaded.classes == card["classes"] and loaded.card.input_size == 64
    assert loaded.transform.input_size == 64
    assert loaded.card.untrained_heads == []


def test_bare_state_dict_config_is_inferred(tmp_path):
    net = googlenet(num_classes=4, batch_norm=False, branch5x5_kernel=5, seed=2)
    loaded = gnet.load(str(_checkpoint(tmp_path, net.state_dict())), "cpu")
    assert (loaded.net.config.num_classes, loaded.net.config.batch_norm, loaded.net.config.branch5x5_kernel) == (4, False, 5)
    assert loaded.classes == ["class 0", "class 1", "class 2", "class 3"]


def test_the_layout_is_chosen_by_the_device_not_by_the_file(tmp_path):
    net = googlenet(num_classes=4, seed=2).eval()
    # As the trainer saves them: channels_last, where a 1x1 kernel's strides pass as contiguous too.
    sd = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
          for k, v in net.state_dict().items()}
    sd = {k: v.as_strided(v.shape, (v.shape[1], 1, v.shape[1], v.shape[1])) if v.shape[2:] == (1, 1) else v
          for k, v in sd.items()}
    assert sd["inception3a.branch1.conv.weight"].is_contiguous()
    path = _checkpoint(tmp_path, sd)
    rebuilt, _ = gnet.load_checkpoint(path)
    assert all(p.stride() == torch.empty(p.shape).stride() for p in rebuilt.parameters())  # the standard layout
    loaded = gnet.load(str(path), "cpu")
    assert gnet.device.memory_format(loaded.device) == torch.channels_last
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in loaded.net.parameters() if p.dim() == 4)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(loaded.net(x).main, net(x).main, rtol=1e-4, atol=1e-5)
        # Every convolution then runs channels_last: the Inception modules' outputs are.
        seen = []
        handle = loaded.net.inception3a.register_forward_hook(lambda _m, _i, out: seen.append(out))
        loaded.net(x)
        handle.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()


def test_torchvision_file_without_aux_heads_loads_with_aux_untrained(tmp_path, tv_net):
    sd = {k: v for k, v in tv_net.state_dict().items() if not k.startswith(("aux1.", "aux2."))}
    loaded = gnet.load(str(_checkpoint(tmp_path, sd)), "cpu")
    assert loaded.card.untrained_heads == ["aux1", "aux2"]
    assert loaded.net.config.transform_input


def test_missing_file(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        gnet.load(str(tmp_path / "nope.pt"))


def test_folder(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        W.load_checkpoint(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"PK\x03\x04broken zip"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        gnet.load(str(path))


class Payload:
    """Stands for an object whose unpickling would run code."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        gnet.load(str(path))
    path2 = _checkpoint(tmp_path, {"model": Payload()}, "evil2.pt")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        gnet.load(str(path2))
    assert "pwned" not in capsys.readouterr().out


def test_no_tensors(tmp_path):
    with pytest.raises(CheckpointError, match="no state dict"):
        gnet.load(str(_checkpoint(tmp_path, {"epoch": 3})))


def test_not_googlenet(tmp_path):
    with pytest.raises(CheckpointError, match="not a GoogLeNet"):
        gnet.load(str(_checkpoint(tmp_path, torch.nn.Linear(2, 2).state_dict())))


def test_missing_unexpected_and_misshaped_keys_are_all_listed(tmp_path):
    sd = googlenet(num_classes=10, seed=0).state_dict()
    del sd["inception4b.branch1.conv.weight"]
    sd["extra.weight"] = torch.zeros(1)
    sd["conv2.conv.weight"] = torch.zeros(64, 64, 3, 3)
    with pytest.raises(CheckpointError) as e:
        gnet.load(str(_checkpoint(tmp_path, sd)))
    msg = str(e.value)
    assert "1 missing: inception4b.branch1.conv.weight" in msg
    assert "1 unexpected: extra.weight" in msg
    assert "conv2.conv.weight (64, 64, 3, 3) vs (64, 64, 1, 1)" in msg
    assert "\n" not in msg


def test_data_parallel_prefix_is_stripped(tmp_path):
    net = googlenet(num_classes=3, seed=0)
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}
    loaded = gnet.load(str(_checkpoint(tmp_path, {"state_dict": sd})), "cpu")
    # fc.bias is zero by initialisation; conv1's weight differs from any other net's.
    torch.testing.assert_close(loaded.net.conv1.conv.weight, net.conv1.conv.weight)
    assert not torch.equal(loaded.net.conv1.conv.weight, googlenet(num_classes=3, seed=1).conv1.conv.weight)


def test_bundled_absent_is_reported_plainly(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "BUNDLED_WEIGHTS", tmp_path / "fashion_mnist_googlenet.pt")
    monkeypatch.setattr(W, "BUNDLED_CARD", tmp_path / "fashion_mnist_googlenet.json")
    with pytest.raises(WeightsNotFoundError, match="bundled checkpoint is absent"):
        gnet.load("bundled")


def test_card_is_json_serialisable():
    card = gnet.load("random", "cpu").card.to_dict()
    assert json.loads(json.dumps(card))["untrained_heads"] == ["main", "aux1", "aux2"]


@pytest.mark.parametrize("invert, expected", [("auto: light garments on dark", "auto"), ("none", False)])
def test_card_decides_whether_photos_are_inverted(tmp_path, invert, expected):
    net = googlenet(num_classes=2, seed=0)
    card = {"classes": ["a", "b"], "input_size": 32, "preprocessing": {"mean": [0.5], "std": [0.5], "invert": invert}}
    path = _checkpoint(tmp_path, {"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card})
    assert gnet.load(str(path), "cpu").transform.invert == expected


@pytest.mark.parametrize(
    "card, fragment",
    [
        ({"classes": ["a", "b", "c"], "input_size": 64}, "preprocessing mean None"),
        ({"classes": ["a"] * 5, "input_size": 64, "preprocessing": {"mean": [0.5], "std": [0.5]}}, "5 class names"),
        ({"classes": ["a"] * 3, "input_size": 8, "preprocessing": {"mean": [0.5], "std": [0.5]}}, "input_size 8"),
    ],
)
def test_a_card_that_does_not_fit_is_a_checkpoint_error(tmp_path, card, fragment):
    net = googlenet(num_classes=3, seed=0)
    path = _checkpoint(tmp_path, {"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card})
    with pytest.raises(CheckpointError, match=fragment):
        gnet.load(str(path))


def test_a_config_with_bad_values_is_a_checkpoint_error(tmp_path):
    net = googlenet(num_classes=3, seed=0)
    path = _checkpoint(tmp_path, {"config": {**net.config.to_dict(), "init": "he"}, "state_dict": net.state_dict()})
    with pytest.raises(CheckpointError, match="config"):
        gnet.load(str(path))
