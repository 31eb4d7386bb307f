"""New classes for the three heads: fitted on a frozen trunk, written as an overlay, stacked with ``+labels=``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gnet
from gnet.errors import CheckpointError, DatasetError
from gnet.heads.retrain import head_inputs, retrain_heads
from gnet.inspect import evaluation
from gnet.inspect.evaluation import class_folder
from gnet.inspect.probe import capture
from gnet.weights.overlay import HEAD_LAST_LAYERS, RETRAINED, save_labels_overlay
from gnet.weights.sources import split_source, with_overlay
from tests.conftest import write_colour_folder, write_test_overlay
from tests.gnet.cli.test_cli import checkpoint  # noqa: F401  (a fixture: a 10-class net with classes k0..k9)

CLASSES = ("blue", "green", "red")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_colour_folder(tmp_path / "colours", classes=CLASSES, per_class=10, size=(40, 40))


def _overlay(source: str, folder: Path, out: Path):
    base = gnet.load(source, "cpu")
    result = retrain_heads(base, class_folder(base, folder), held_out=0.2, seed=0)
    return base, result, save_labels_overlay(result.state_dict, result.card, out)


def test_the_overlay_reloads_and_answers_in_the_new_classes(checkpoint, folder, tmp_path):
    base, result, path = _overlay(str(checkpoint), folder, tmp_path / "labels.pt")
    card = result.card
    assert card["classes"] == list(CLASSES) and card["method"] == RETRAINED
    assert card["base_weights_sha256"] == base.weights_hash
    assert card["data"]["images_per_class"] == {c: 10 for c in CLASSES} and card["held_out"]["images"] == 6
    assert set(result.state_dict) == {f"{layer}.{p}" for layer in HEAD_LAST_LAYERS.values() for p in ("weight", "bias")}

    stacked = gnet.load(with_overlay(str(checkpoint), path, "labels"), "cpu")
    assert stacked.classes == list(CLASSES) and stacked.net.fc.out_features == 3 and stacked.net.config.num_classes == 3
    assert stacked.weights_hash != base.weights_hash and "+labels=" in stacked.source
    assert split_source(stacked.source)[0] == str(checkpoint)
    data = class_folder(stacked, folder)
    x = data.inputs(range(len(data)))
    # the stacked model's logits are the fitted layers applied to the frozen trunk's features
    with torch.no_grad(), capture(base.net, head_inputs(base.net)) as store:
        base.net(x)
    out = stacked.net(x)
    for head, layer in HEAD_LAST_LAYERS.items():
        expected = store[head] @ result.state_dict[f"{layer}.weight"].T + result.state_dict[f"{layer}.bias"]
        torch.testing.assert_close(getattr(out, head), expected, rtol=1e-4, atol=1e-4)
    # and its held-out accuracy, recomputed through the stacked model, is the card's
    _, held = data.split(0.2, seed=0)
    with torch.no_grad():
        logits = stacked.net(held.inputs(range(len(held))))
    for head in HEAD_LAST_LAYERS:
        right = float((getattr(logits, head).argmax(1) == held.labels).double().mean())
        assert right == pytest.approx(card["held_out"]["accuracy"][head], abs=1e-4)
    assert stacked.card.accuracy["main"] == card["held_out"]["accuracy"]["main"]
    # downstream views follow the new classes
    analysis = gnet.analyze(stacked, data.picture(0))
    assert {p.label for head in analysis.heads.values() for p in head.top} <= set(CLASSES)


def test_an_overlay_for_other_weights_is_one_sentence(checkpoint, folder, tmp_path):
    _, _, path = _overlay(str(checkpoint), folder, tmp_path / "labels.pt")
    with pytest.raises(CheckpointError, match="was retrained on other weights .* stack it on the weights it was retrained on"):
        gnet.load(with_overlay("random", path, "labels"), "cpu")


def test_labels_stack_on_distilled_aux_heads_but_not_under_them(checkpoint, folder, tmp_path):
    aux = write_test_overlay(gnet.load(str(checkpoint), "cpu"), tmp_path / "aux.pt")
    with_aux = with_overlay(str(checkpoint), aux)
    _, _, path = _overlay(with_aux, folder, tmp_path / "labels.pt")
    stacked = gnet.load(with_overlay(with_aux, path, "labels"), "cpu")  # +aux= then +labels=: the order it was made in
    assert stacked.classes == list(CLASSES) and stacked.card.details["aux_heads"]["how"] == "distilled"
    with pytest.raises(CheckpointError, match="retrained on other weights"):
        gnet.load(with_overlay(str(checkpoint), path, "labels"), "cpu")  # made on the aux heads, not without them
    _, _, plain = _overlay(str(checkpoint), folder, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="distilled on other weights"):
        gnet.load(with_overlay(with_overlay(str(checkpoint), plain, "labels"), aux), "cpu")


def test_a_file_that_is_not_a_label_overlay(checkpoint, tmp_path):
    aux = write_test_overlay(gnet.load(str(checkpoint), "cpu"), tmp_path / "aux.pt")
    with pytest.raises(CheckpointError, match="is not a label overlay .* gnet retrain-heads"):
        gnet.load(with_overlay(str(checkpoint), aux, "labels"), "cpu")


def test_bad_folders_get_one_sentence(checkpoint, tmp_path, monkeypatch):
    base = gnet.load(str(checkpoint), "cpu")
    one = write_colour_folder(tmp_path / "one", classes=("blue",), per_class=3, size=(32, 32))
    with pytest.raises(DatasetError, match="one class subfolder"):
        class_folder(base, one)
    lonely = write_colour_folder(tmp_path / "lonely", classes=("blue", "red"), per_class=2, size=(32, 32))
    (lonely / "red" / "001.png").unlink()
    with pytest.raises(DatasetError, match="Class 'red' .* has 1 image"):
        retrain_heads(base, class_folder(base, lonely))
    many = write_colour_folder(tmp_path / "many", classes=("a", "b", "c"), per_class=2, size=(32, 32))
    monkeypatch.setattr(evaluation, "MAX_CLASSES", 2)
    with pytest.raises(DatasetError, match="3 class subfolders, more than the 2"):
        class_folder(base, many)
    monkeypatch.undo()
    (many / "c" / "000.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match="000.png"):
        retrain_heads(base, class_folder(base, many))


def test_a_source_peels_its_overlays_from_the_right():
    from gnet.weights.sources import split_overlay

    assert split_overlay("bundled+aux=a.pt+labels=l.pt") == ("bundled+aux=a.pt", "labels", "l.pt")
    assert split_overlay("bundled+aux=a.pt") == ("bundled", "aux", "a.pt")
    assert split_overlay("bundled") == ("bundled", None, None)
    assert split_source("imagenet+labels=l.pt+aux=a.pt") == ("imagenet", "a.pt")


def test_a_fit_stops_when_its_progress_says_so(checkpoint, folder, tmp_path):
    from gnet.inspect.attributions import Stopped

    base = gnet.load(str(checkpoint), "cpu")
    seen: list[float] = []

    def progress(done: float) -> bool:
        seen.append(done)
        return done < 0.5

    with pytest.raises(Stopped, match="stopped at"):
        retrain_heads(base, class_folder(base, folder), progress=progress)
    assert seen and seen[-1] >= 0.5 and max(seen) < 0.9  # stopped during the recording, before any fit


def test_attributions_and_class_visualizations_follow_the_new_classes(checkpoint, folder, tmp_path):
    from gnet.inspect.attributions import attribute
    from gnet.inspect.features import visualize

    _, _, path = _overlay(str(checkpoint), folder, tmp_path / "labels.pt")
    stacked = gnet.load(with_overlay(str(checkpoint), path, "labels"), "cpu")
    x = stacked.preprocess(class_folder(stacked, folder).picture(0))
    for head in HEAD_LAST_LAYERS:
        found = attribute(stacked, x, "saliency", head=head, target=2)
        assert found.target_label == "red" and found.heatmap.shape == (64, 64)
    shown = visualize(stacked, "aux1:green", steps=4)
    assert shown.target.endswith("green")
    with pytest.raises(gnet.GNetError, match="choose one of blue, green, red"):
        visualize(stacked, "main:k3", steps=1)  # the base weights' class names are gone
