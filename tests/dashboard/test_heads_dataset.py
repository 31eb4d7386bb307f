"""The Heads page's dataset section and the out-of-domain banner, run by Streamlit's AppTest (no browser).

The gallery's click is a browser event (tests/dashboard/test_browser_heads.py clicks it); here the
state it sets is set directly, and the pages are checked to follow it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import gnet
from dashboard.state import IMAGE_FROM_SET, Keys, PickedImage
from gnet.data.images import image_digest
from gnet.data.samples import sample_images
from gnet.heads.logits import read_shipped
from gnet.inspect.evaluation import fashion_mnist_test
from tests.dashboard.test_app import _ok
from tests.dashboard.test_app import _open as open_page

ROOT = Path(__file__).resolve().parents[2]


def _open(page: str = "heads") -> AppTest:
    return open_page(page)


def _chart_text(at: AppTest) -> str:
    return " ".join(chart.proto.spec for chart in at.get("plotly_chart"))


def _array(encoded) -> np.ndarray:
    """A plotly JSON array: a list, or numpy bytes as {"dtype", "bdata", "shape"}."""
    if isinstance(encoded, list):
        return np.asarray(encoded)
    shape = tuple(int(n) for n in str(encoded.get("shape", "-1")).split(","))
    return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"]).reshape(shape)


@pytest.fixture
def bundled_app(monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_WEIGHTS", "bundled")
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))


def test_the_dataset_section_on_the_shipped_logits(bundled_app):
    at = _open()
    _ok(at)
    headers = [h.value for h in at.header] + [s.value for s in at.subheader]
    for title in ("Over a whole test set", "Confusion matrices", "Calibration", "Agreement",
                  "Early exits: the auxiliary heads as a way to save compute",
                  "Where an auxiliary head and main disagree"):
        assert title in headers, title
    assert any("Logits shipped with the bundled weights" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "ece" in d.value.columns)
    _, arrays = read_shipped()
    labels = arrays["labels"].astype(np.int64)
    for row in table.itertuples():
        assert row.top1 == pytest.approx(float((arrays[row.head].argmax(1) == labels).mean()))
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heatmaps = [t for s in specs for t in s["data"] if t["type"] == "heatmap" and len(t["x"]) == 10]
    assert len(heatmaps) == 3  # one confusion matrix per head
    counts = _array(heatmaps[0]["customdata"])
    assert counts.shape == (10, 10) and counts.sum() == 10_000
    text = _chart_text(at)
    assert "main only" in text and "aux1 only" in text and "aux2 only" in text and "perfect calibration" in text
    markdown = " ".join(m.value for m in at.markdown)
    assert "BranchyNet" in markdown and "discards the auxiliary heads at inference" in markdown
    assert any("Click one" in c.value for c in at.caption)


def test_a_picked_test_image_becomes_the_current_image(bundled_app):
    loaded = gnet.load("bundled", "cpu")
    data = fashion_mnist_test(loaded)
    index = 17
    image = data.picture(index)
    at = _open("overview")
    at.session_state[Keys.PICKED] = PickedImage(f"Fashion-MNIST test set #{index}", image, image_digest(image),
                                                data.classes[int(data.labels[index])])
    at.session_state[Keys.IMAGE_MODE] = IMAGE_FROM_SET
    at.run()
    _ok(at)
    assert at.sidebar.radio(key=Keys.IMAGE_MODE).value == IMAGE_FROM_SET
    expected = gnet.analyze(loaded, image).heads["main"].top[0].label
    assert json.dumps(expected)[1:-1] in at.get("plotly_chart")[0].proto.spec  # the heads' top-5 of that image


def test_test_set_source_without_a_pick_says_how_to_pick(bundled_app):
    at = _open("overview")
    at.sidebar.radio(key=Keys.IMAGE_MODE).set_value(IMAGE_FROM_SET).run()
    assert not at.exception
    assert any("disagreement gallery" in c.value for c in at.sidebar.caption)
    assert any("Choose an image" in i.value for i in at.info)


@pytest.mark.parametrize("folder, fragment", [("/no/such/folder", "does not exist"), (str(ROOT / "assets"), "classes")])
def test_a_bad_folder_is_one_error_and_the_rest_of_the_page_stays(bundled_app, folder, fragment):
    at = _open()
    at.text_input(key=Keys.HEADS_FOLDER).input(folder).run()
    assert not at.exception
    assert len(at.error) == 1 and fragment in at.error[0].value
    assert at.dataframe[0].value["head"].tolist() == ["main", "aux1", "aux2"]  # the one-image section is still there


def test_out_of_domain_banner_and_the_way_back(bundled_app):
    at = _open("overview")
    photo = next(s for s in sample_images() if s.name == "chelsea")
    at.sidebar.selectbox(key=Keys.SAMPLE).set_value(photo).run()
    _ok(at)
    (warning,) = at.warning
    assert "looks unlike the data these weights were trained on" in warning.value and "Ankle boot" in warning.value
    assert "less typical than all held-out" in warning.value or "% of held-out" in warning.value
    at.button(key=Keys.DOMAIN_SAMPLE).click().run()
    _ok(at)
    assert at.sidebar.selectbox(key=Keys.SAMPLE).value.slug is not None
    assert not at.warning
    for page in ("heads", "attributions"):
        at.sidebar.selectbox(key=Keys.SAMPLE).set_value(photo).run()
        at.switch_page(f"routes/{page}.py").run()
        assert any("looks unlike" in w.value for w in at.warning), page


def test_the_banner_never_rounds_a_share_up_to_all():
    from dashboard.views.common import share_below

    # 99.96% printed "100.0% of", which reads as every held-out image scoring lower.
    assert [share_below(p) for p in (100.0, 99.96, 99.4, 0.57 * 100, 0.0)] == [
        "all", "99.9% of", "99.4% of", "57.0% of", "0.0% of"]


def test_weights_without_calibration_say_so(monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_WEIGHTS", "random")
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    at = _open("overview")
    _ok(at)
    assert any("No in-domain score for these weights" in c.value for c in at.caption)
    assert not at.warning or all("looks unlike" not in w.value for w in at.warning)
    at.switch_page("routes/heads.py").run()
    _ok(at)
    # Other weights are compared over the samples, computed on demand (and kept in the disk cache).
    assert any("the 24 sample images" in c.value and "Logits computed now" in c.value for c in at.caption)
    assert next(d.value for d in at.dataframe if "ece" in d.value.columns)["head"].tolist() == ["main", "aux1", "aux2"]
    at.run()
    assert any("Logits read from the disk cache" in c.value for c in at.caption)


def _probe_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("The probe rises fastest"))


def test_the_linear_probes_of_the_bundled_net_are_the_shipped_curve(bundled_app):
    from gnet.heads.readout import ASSET, ProbeCurve
    from gnet.storage import load_asset

    at = _open()
    _ok(at)
    assert "Linear probes: how much of the answer a linear layer reads at each depth" in [s.value for s in at.subheader]
    assert "linear probe (held out)" in _chart_text(at) and "aux2 (trained head)" in _chart_text(at)
    shipped = ProbeCurve.from_arrays(load_asset(ASSET, {"weights": gnet.load("bundled", "cpu").weights_hash}))
    caption = _probe_caption(at)
    for head, point in (("main", "inception5b"), ("aux1", "inception4a"), ("aux2", "inception4d")):
        assert f"{head} " in caption and f"the probe at {point} ({shipped.heads[head]:.2%} against " \
            f"{shipped.at(point).accuracy:.2%}" in caption
    assert not any(b.label == "Compute the probe curve" for b in at.button)


def _imagenet_folder(root: Path, per_class: tuple[int, int]) -> Path:
    classes = gnet.load("random", "cpu").classes[:2]
    rng = np.random.default_rng(0)
    for name, n in zip(classes, per_class):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def _on_folder(monkeypatch, tmp_path, per_class: tuple[int, int]) -> AppTest:
    """The Heads page of ImageNet-shaped random weights over a folder of two of their classes."""
    monkeypatch.setenv("GNET_WEIGHTS", "random")
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    folder = _imagenet_folder(tmp_path / "set", per_class)
    at = _open()
    return at.text_input(key=Keys.HEADS_FOLDER).input(str(folder)).run()


def test_probes_over_a_folder_are_computed_on_demand_then_stored(monkeypatch, tmp_path):
    at = _on_folder(monkeypatch, tmp_path, (4, 4))
    _ok(at)
    assert any("No probe curve is stored" in i.value for i in at.info)
    assert "linear probe (held out)" not in _chart_text(at)
    at.button(key=Keys.HEADS_PROBES).click().run()
    _ok(at)
    assert "linear probe (held out)" in _chart_text(at)
    assert "the probe at inception5b" in _probe_caption(at)  # the folder has the weights' classes: heads are scored
    at.run()  # the curve is in the disk cache now: no button
    _ok(at)
    assert not any("No probe curve is stored" in i.value for i in at.info) and "linear probe (held out)" in _chart_text(at)


def test_a_folder_the_probes_cannot_split_is_one_error_and_the_rest_stays(monkeypatch, tmp_path):
    at = _on_folder(monkeypatch, tmp_path, (3, 1))
    assert not at.exception
    assert len(at.error) == 1 and "has 1 image" in at.error[0].value
    assert "Where an auxiliary head and main disagree" in [s.value for s in at.subheader]  # the gallery still draws


def test_the_probe_reading_calls_a_gap_within_sampling_noise_a_match():
    from dashboard.views.heads_dataset import _probe_reading

    def curve(n: int, main: float, aux1: float) -> dict:
        points = ["conv2", "inception4a", "inception4d", "inception5b"]
        return {
            "probes": [{"point": p, "accuracy": a, "test_images": n}
                       for p, a in zip(points, [0.80, 0.932, 0.933, 0.932])],
            "heads": {"main": {"point": "inception5b", "accuracy": main},
                      "aux1": {"point": "inception4a", "accuracy": aux1}},
        }

    # 10,000 images at 93%: two standard errors of a difference are 0.72 points.
    text = _probe_reading(curve(10_000, main=0.9304, aux1=0.9289))
    assert "rises fastest from conv2 to inception4a (+13.2%)" in text
    assert "aux1 matches the probe at inception4a (92.89% against 93.20%); main matches the probe" in text
    assert "aux2" not in text
    # The margin is said once, for both heads.
    assert text.endswith("A gap counts only beyond two standard errors (±0.7 points on 10,000 test images): "
                         "closer than that, it is chance.") and text.count("±") == 1
    text = _probe_reading(curve(10_000, main=0.9400, aux1=0.9200))
    assert "main beats the probe at inception5b (94.00% against 93.20%)." in text
    assert "aux1 trails the probe at inception4a (92.00% against 93.20%);" in text
    assert "(±0.7 points" in text  # two margins that round the same are one
    # The same 1.2-point gap on 100 images is chance.
    text = _probe_reading(curve(100, main=0.9400, aux1=0.9200))
    assert "aux1 matches" in text and "(±6.9 to ±7.4 points on 100 test images)" in text
