"""The shipped checkpoint: its card's accuracies hold, and photos reach it through the right preprocessing."""

import json

import pytest
import torch

import gnet
from gnet.data.fashion_mnist import GrayImageDataset, load_fashion_mnist
from gnet.data.samples import sample_images
from gnet.train.loop import evaluate
from gnet.weights.loader import BUNDLED_CARD

N_EVAL = 1000
TOLERANCE = 2.0  # percentage points between the card (full 10,000) and the first 1,000 images


@pytest.fixture(scope="module")
def bundled():
    return gnet.load("bundled", "cpu")


def test_card_describes_the_checkpoint(bundled):
    card = json.loads(BUNDLED_CARD.read_text())
    assert card["dataset"].startswith("Fashion-MNIST")
    assert card["heads_trained"] == {"main": True, "aux1": True, "aux2": True}
    assert {"command", "wall_time_s", "hardware", "commit"} <= set(card["training"])
    assert bundled.card.input_size == card["input_size"] == bundled.transform.input_size
    assert bundled.net.fc.weight.dtype == torch.float32
    assert len(bundled.classes) == 10


def test_accuracy_per_head_matches_the_card(bundled):
    try:
        images, labels = load_fashion_mnist("test")
    except gnet.DatasetError as e:
        if __import__("os").environ.get("CI"):
            raise
        pytest.skip(str(e))
    card = bundled.card
    mean, std = card.normalization["mean"][0], card.normalization["std"][0]
    data = GrayImageDataset(images[:N_EVAL], labels[:N_EVAL], input_size=card.input_size, train=False, mean=mean, std=std)
    measured = evaluate(bundled.net, data)
    for head in ("main", "aux1", "aux2"):
        claimed = card.accuracy[head]
        assert abs(100 * measured[head] - 100 * claimed) <= TOLERANCE, (head, measured[head], claimed)


def test_samples_through_the_photo_path_are_mostly_right(bundled):
    samples = [s for s in sample_images() if s.slug is not None]
    assert len(samples) == 20
    probs = gnet.predict(bundled, [s.path for s in samples])["main"]
    truth = [bundled.classes.index(s.true_label(bundled.classes)) for s in samples]
    correct = sum(int(p.argmax()) == t for p, t in zip(probs, truth))
    assert correct >= 16, f"only {correct}/20 samples right: photo preprocessing differs from training's"
