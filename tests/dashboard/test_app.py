"""Every page of the dashboard, run by Streamlit's AppTest with a sample image (no browser).

The model and analyses are cached process-wide, so each network pass runs once for the module.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import gnet
from dashboard import live
from dashboard.cache import gradients, models
from gnet.data.samples import sample_images
from gnet.inspect import gradients as gradients_module
from gnet.inspect.attributions import GRAD_CAM_BRANCH
from gnet.inspect.gradients import aux_ratio, compare_variants
from gnet.net.layers import BRANCHES
from gnet.train.runs import load_runs
from tests.conftest import sample_with_an_empty_grad_cam, write_fake_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT_S = 300  # a cold model load plus the batch of samples on a slow shared CPU
PAGES = {  # route -> the title the page shows
    "overview": "GoogLeNet Explorer",
    "branches": "Inception branches",
    "heads": "Heads: aux1, aux2 and main",
    "gradients": "Gradients",
    "cost": "Cost",
    "design": "Design lab",
    "attributions": "Attributions",
}


def _open(page: str = "overview") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    if page != "overview":
        at.switch_page(f"routes/{page}.py").run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _chart_text(at: AppTest) -> str:
    return " ".join(chart.proto.spec for chart in at.get("plotly_chart"))


def _chart_annotations(at: AppTest) -> list:
    """The first chart's subplot titles (plotly annotations)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [type("A", (), a) for a in spec["layout"].get("annotations", [])]


@pytest.fixture(scope="module")
def first_sample():
    return sample_images()[0]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_runs(app_weights, page):
    at = _open(page)
    _ok(at)
    assert at.sidebar.selectbox(key="weights").value == app_weights
    assert [t.value for t in at.title] == [PAGES[page]]


def test_overview_shows_the_three_heads_and_the_stages(app_weights, first_sample):
    at = _open()
    _ok(at)
    expected = gnet.analyze(gnet.load(app_weights, "cpu"), first_sample.path)
    text = _chart_text(at)
    for head in ("main", "aux1", "aux2"):
        assert head in text
        assert json.dumps(expected.heads[head].top[0].label)[1:-1] in text
    for module in gnet.INCEPTION_MODULES:
        assert module.removeprefix("inception") in text  # the stage diagram's blocks
    assert any(b.label == "Analysis (JSON)" for b in at.get("download_button"))


def test_branches_offers_nine_modules(app_weights):
    at = _open("branches")
    _ok(at)
    module = at.selectbox(key="branches_module")
    assert [o.split(" ")[0] for o in module.options] == list(gnet.INCEPTION_MODULES)
    assert len(at.get("plotly_chart")) == 4 * 2 + 2 + 1  # per branch grid + overlay, focus pair, energy
    module.set_value("inception5b").run()
    _ok(at)
    assert "inception5b" in _chart_text(at)


def test_heads_compares_three_heads_and_the_batch(app_weights):
    at = _open("heads")
    _ok(at)
    summary = at.dataframe[0].value
    assert list(summary["head"]) == ["main", "aux1", "aux2"]
    batch = next(d for d in at.dataframe if "main_label" in d.value.columns)
    assert len(batch.value) == len(sample_images())
    # The tables show readable names (the CSVs keep the frames' own).
    labels = {name: c.get("label") for d in (at.dataframe[0], batch) for name, c in json.loads(d.proto.columns).items()}
    assert {k: labels.get(k) for k in ("top1", "agrees_with_main", "true_label", "aux1_label", "aux2_prob")} == {
        "top1": "top-1", "agrees_with_main": "agrees with main", "true_label": "true class", "aux1_label": "aux1",
        "aux2_prob": "aux2 prob"}
    assert not gnet.load(app_weights, "cpu").card.untrained_heads
    assert not at.warning  # every head of the test weights is trained: nothing to warn about


def test_heads_warns_about_untrained_heads(monkeypatch, tmp_path):
    """A checkpoint whose card says its aux heads were never trained gets a warning naming them."""
    net = gnet.googlenet(num_classes=10, init="kaiming", seed=0)
    card = {
        "name": "aux never trained", "classes": [f"k{i}" for i in range(10)], "input_size": 64,
        "preprocessing": {"mean": [0.3], "std": [0.35]}, "heads_trained": {"main": True, "aux1": False, "aux2": False},
    }
    path = tmp_path / "untrained_aux.pt"
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict(), "card": card}, path)
    monkeypatch.setenv("GNET_WEIGHTS", str(path))
    at = _open("heads")
    _ok(at)
    (warning,) = at.warning
    assert "aux1 and aux2 head(s) of these weights were never trained (aux never trained)" in warning.value
    assert [a.text for a in _chart_annotations(at)][:3] == ["main", "aux1 (untrained)", "aux2 (untrained)"]


def _markdown(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def test_gradients_from_the_recorded_runs(app_weights):
    at = _open("gradients")
    _ok(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # depth, with/without-aux ratio, heatmap of a run, loss curves
    assert '"type":"log"' in _chart_text(at).replace(" ", "")
    text = _markdown(at)
    for words in ("auxiliary classifiers", "0.3", "vanishing gradient", "batch normalization", "Ioffe"):
        assert words in text
    assert any("8 Fashion-MNIST test images" in c.value for c in at.caption)  # the input used is stated
    assert any("depends on the initialisation and on the input" in c.value for c in at.caption)
    ratios = aux_ratio(load_runs().comparison)
    ratios = ratios[ratios["quantity"] == "weight"].set_index(["variant", "init", "layer"])["ratio"]
    assert f"{ratios['no_bn', 'trunc_normal', 'conv1.conv']:,.0f}x" in text  # the numbers come from the data
    assert f"{ratios['no_bn', 'xavier', 'conv1.conv']:.3g}x" in text
    assert len(at.get("download_button")) >= 4
    at.radio(key="gradients_quantity").set_value("activation").run()
    at.multiselect(key="gradients_inits").set_value(["trunc_normal", "kaiming"]).run()
    at.selectbox(key="gradients_run").set_value("bn_aux").run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 4


def test_gradients_on_the_image_compute_once_per_network(app_weights, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("inits"))
        return compare_variants(*args, **kwargs)

    monkeypatch.setattr(gradients_module, "compare_variants", counted)
    gradients.live_comparison.clear()
    at = _open("gradients")
    at.radio(key="gradients_source").set_value("live").run()
    _ok(at)
    assert calls == [("trunc_normal",)]
    assert any("the sidebar's image" in c.value for c in at.caption)
    at.radio(key="gradients_quantity").set_value("activation").run()
    at.multiselect(key="gradients_losses").set_value(["main", "aux1"]).run()
    at.multiselect(key="gradients_variants").set_value(["no_bn", "bn", "loaded"]).run()
    _ok(at)
    assert calls == [("trunc_normal",), ()]  # toggles redraw; only the newly shown loaded model was computed
    assert "loaded model" in _chart_text(at)
    gradients.live_comparison.clear()


def test_live_training_reports_in_chunks_and_stops(monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(write_fake_fashion_mnist(tmp_path / "fm", n_train=6 * 16)))
    before = set(Path(tempfile.gettempdir()).glob("gnet-live-*"))
    seen = []

    def on_chunk(run: live.LiveRun) -> bool:
        seen.append(run)
        return True

    request = live.LiveRunRequest(steps=10)  # 6 batches of 16: the one epoch ends the run at step 6
    run = live.train_live(request, on_chunk, chunk=3)
    assert [r.step for r in seen] == [3, 6]
    assert all(r.accuracy is None for r in seen)  # the accuracy comes once, at the end
    assert run.step == 6 and set(run.accuracy) == {"main", "aux1", "aux2"}
    assert set(run.grad_norms["step"]) == {5}  # logged every 5 steps
    assert set(run.losses["head"]) == {"main", "aux1", "aux2", "total"}
    assert set(Path(tempfile.gettempdir()).glob("gnet-live-*")) == before  # the run folder is gone
    stopped = live.train_live(request, lambda run: False, chunk=3)  # the session's stop flag
    assert stopped.step == 3 and stopped.accuracy is None
    assert set(Path(tempfile.gettempdir()).glob("gnet-live-*")) == before


def test_live_training_on_the_page(app_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(write_fake_fashion_mnist(tmp_path / "fm", n_train=6 * 16)))
    at = _open("gradients")
    at.toggle(key="live_batch_norm").set_value(True)
    at.slider(key="live_steps").set_value(10)
    at.button(key="live_start").click().run()
    _ok(at)
    assert any("BN, aux, N(0, 0.01): 6 steps" in s.value and "test (8 images)" in s.value for s in at.success)
    assert len(at.get("plotly_chart")) == 6  # the page's four and the live run's heatmap and loss curves
    at.radio(key="gradients_quantity").set_value("activation").run()  # the result stays without retraining
    assert len(at.get("plotly_chart")) == 6


def test_live_training_without_fashion_mnist_says_so(app_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    at = _open("gradients")
    at.button(key="live_start").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "Fashion-MNIST not found" in at.error[0].value
    assert len(at.get("plotly_chart")) == 4  # the rest of the page still works


def test_cost_table_and_paper(app_weights):
    at = _open("cost")
    _ok(at)
    net = gnet.load(app_weights, "cpu").net
    size = gnet.load(app_weights, "cpu").card.input_size
    rows, paper = at.dataframe[0].value, at.dataframe[1].value
    assert len(rows) == len(gnet.flops(net, size))
    columns = json.loads(at.dataframe[0].proto.columns)  # counts with thousands separators, under readable names
    counts = ("params", "macs", "flops", "other_ops")
    assert {c: columns[c]["type_config"]["format"] for c in counts} == dict.fromkeys(counts, "localized")
    assert columns["macs"]["label"] == "multiply-adds" and columns["out_shape"]["label"] == "output (C x H x W)"
    # Table 1 is compared with the paper's layout at 224 px whatever the loaded net, not with the loaded net.
    expected = gnet.table1_comparison(224).set_index("name")
    shown = paper.set_index("layer")
    assert list(shown.index) == list(expected.index)
    assert shown.loc["inception3a", "M ops, paper"] == f"{expected.loc['inception3a', 'ops_m_paper_layout']:,.1f}"
    assert shown.loc["inception3a", "M ops, T1"] == "128.0"
    assert shown.loc["maxpool1", "K params, T1"] == "–"  # not applicable: a dash, never "None"
    assert not paper.isin(["None", "nan"]).any().any()
    reasons = next(m.value for m in at.markdown if m.value.startswith("**Why the rows differ**"))
    assert "- **conv1**: The paper's 2.7K params / 34M ops do not fit" in reasons and "oddity" in reasons
    assert "- **conv2+conv3**: Table 1 counts parameters in thousands of 1,024" in reasons
    assert "- **inception3a, inception3b, inception4a, inception4b, inception4c, inception4d" in reasons  # '5x5'
    at.select_slider(key="cost_input_size").set_value(128).run()
    _ok(at)
    assert len(at.dataframe[0].value) == len(gnet.flops(net, 128))
    assert at.dataframe[1].value.equals(paper)  # the comparison does not follow the loaded net's size


def test_attributions_compute_and_are_kept(app_weights):
    at = _open("attributions")
    _ok(at)
    assert not at.get("plotly_chart")
    at.button(key="attributions_run").click().run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 2  # Saliency and Grad-CAM, the defaults
    assert at.selectbox(key="attributions_branch").value == GRAD_CAM_BRANCH
    at.selectbox(key="attributions_branch").set_value("5x5").run()  # a new request: not computed yet
    _ok(at)
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key="attributions_branch").set_value(GRAD_CAM_BRANCH).run()  # back: from memory, no button
    assert len(at.get("plotly_chart")) == 2


def test_an_empty_grad_cam_names_the_branches_of_its_module_that_find_evidence(app_weights):
    sample, found = sample_with_an_empty_grad_cam(gnet.load(app_weights, "cpu"))
    empty = next(b for b, any_evidence in found.items() if not any_evidence)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    for name, value in {"sample": sample.name, "method": "grad_cam", "module": "inception4e", "branch": empty}.items():
        at.query_params[name] = value
    at.run()
    at.switch_page("routes/attributions.py").run()
    at.button(key="attributions_run").click().run()
    _ok(at)
    (caption,) = [c.value for c in at.caption if c.value.startswith("**Nothing here")]
    others = [b for b in BRANCHES if b != empty and found[b]]
    assert f"on inception4e.{empty}, no position supports" in caption
    assert (f"On inception4e, {others[0]} does" if len(others) == 1 else
            f"and {others[-1]} do" if others else "No other branch of inception4e does either") in caption


def test_attribution_captions_say_why_a_map_is_empty():
    import numpy as np

    from dashboard.views.attributions import _caption
    from gnet.inspect.attributions import Attribution

    cam = Attribution("grad_cam", "main", 6, "Shirt", np.zeros((8, 8), np.float32), "inception4e.3x3", 0.04)
    assert _caption(cam).startswith("**Nothing here: on inception4e.3x3, no position supports Shirt.**")
    assert _caption(cam).endswith("(0.0 s)")
    found = np.zeros((8, 8), np.float32)
    found[2, 2] = 1.0
    assert "Nothing here" not in _caption(dataclasses.replace(cam, heatmap=found))
    assert "Another branch or module may show where the evidence is." in _caption(cam)  # the others unknown
    assert "On inception4e, 1x1 does: pick it under Grad-CAM branch." in _caption(cam, ["1x1"])
    assert "On inception4e, 1x1, 5x5 and pool_proj do: pick one" in _caption(cam, ["1x1", "5x5", "pool_proj"])
    assert "No other branch of inception4e does either: try another module." in _caption(cam, [])
    flat = Attribution("saliency", "aux1", 6, "Shirt", np.zeros((8, 8), np.float32), None, 0.1)
    assert "aux1 head's Shirt score does not change with any pixel" in _caption(flat)


def test_uploaded_image(app_weights, first_sample):
    loaded = gnet.load(app_weights, "cpu")
    top1 = {s.name: gnet.analyze(loaded, s.path).heads["main"].top[0].label for s in sample_images()}
    other = next(s for s in sample_images() if top1[s.name] != top1[first_sample.name])
    at = _open()
    at.sidebar.radio(key="image_mode").set_value("Upload").run()
    assert any("Choose an image" in i.value for i in at.info)
    data = Path(other.path).read_bytes()
    at.sidebar.file_uploader(key="image_upload").set_value((f"mine{other.path.suffix}", data, "image/png"))
    at.run()
    _ok(at)
    main = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]  # the top-5 bars of the main head
    assert main["name"] == "main" and main["y"][-1] == top1[other.name]  # the upload, not the default sample


def test_broken_upload_shows_the_library_sentence(app_weights):
    at = _open()
    at.sidebar.radio(key="image_mode").set_value("Upload").run()
    at.sidebar.file_uploader(key="image_upload").set_value(("broken.png", b"not an image at all", "image/png"))
    at.run()
    assert not at.exception
    with pytest.raises(gnet.ImageError) as expected:
        gnet.load_image(b"not an image at all", name="broken.png")
    assert [e.value for e in at.error] == [str(expected.value)]
    assert at.error[0].value.startswith("'broken.png' is not an image")  # named as the user named it
    at.switch_page("routes/cost.py").run()  # the rest of the app keeps working
    assert not at.exception and not at.error and at.dataframe


@pytest.mark.parametrize("content", [None, b"a text file, not a checkpoint"], ids=["missing", "wrong"])
def test_missing_or_wrong_weights_show_the_library_sentence(monkeypatch, tmp_path, content):
    path = tmp_path / "weights.pt"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setenv("GNET_WEIGHTS", str(path))
    at = _open()
    assert not at.exception
    with pytest.raises(gnet.GNetError) as expected:
        gnet.load(str(path))
    assert [e.value for e in at.error] == [str(expected.value)]
    at.sidebar.selectbox(key="weights").set_value("random").run()
    _ok(at)


def test_integrated_gradients_runs_with_few_steps(app_weights):
    at = _open("attributions")
    at.multiselect(key="attributions_methods").set_value(["integrated_gradients"]).run()
    at.slider(key="attributions_ig_steps").set_value(4)
    at.slider(key="attributions_ig_samples").set_value(1)
    at.button(key="attributions_run").click().run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 1
    assert "Integrated Gradients" in _chart_text(at)


def test_a_bug_in_a_page_becomes_one_error_with_a_reference(app_weights, monkeypatch, caplog):
    from dashboard.views import cost

    def broken(sel):
        raise RuntimeError("a bug in the Cost page")

    monkeypatch.setattr(cost, "render", broken)
    at = _open("cost")
    assert not at.exception
    (error,) = at.error
    assert "Something went wrong in the Cost page (reference " in error.value
    reference = error.value.split("(reference ")[1][:8]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)  # the details are in the log
    assert "RuntimeError" not in error.value and "Traceback" not in error.value
    at.switch_page("routes/overview.py").run()  # the rest of the app keeps working
    _ok(at)


def test_a_bug_in_the_sidebar_does_not_take_the_page_down(app_weights, monkeypatch):
    from dashboard.views import sidebar

    def broken():
        raise ValueError("height and width must be > 0")

    monkeypatch.setattr(sidebar, "_image", broken)
    at = _open("cost")
    assert not at.exception
    assert any("Something went wrong in the sidebar" in e.value for e in at.error)


def test_integrated_gradients_over_budget_is_clamped_with_a_notice(app_weights, monkeypatch):
    monkeypatch.setattr(models, "seconds_per_pass", lambda weights, device: 0.5)
    at = _open("attributions")
    at.multiselect(key="attributions_methods").set_value(["integrated_gradients"]).run()
    at.slider(key="attributions_ig_steps").set_value(64)
    at.slider(key="attributions_ig_samples").set_value(16).run()
    _ok(at)
    (warning,) = at.warning
    assert warning.value.startswith("64 steps x 16 samples would take about 512 s here, over the 60 s")
    assert any("runs 64 forward and backward passes" in c.value and "about 32 s here" in c.value for c in at.caption)


def test_an_uploaded_checkpoint_is_named_as_the_user_named_it(app_weights):
    at = _open()
    at.sidebar.selectbox(key="weights").set_value("upload a checkpoint").run()
    at.sidebar.file_uploader(key="checkpoint_upload").set_value(("empty.pt", b"", "application/octet-stream"))
    at.run()
    assert not at.exception
    messages = [e.value for e in at.error]
    assert messages and all(m.startswith("'empty.pt' is not a PyTorch checkpoint (an empty file)") for m in messages)
    assert not any("gnet-uploads" in m or "/tmp" in m for m in messages)  # never the server's temporary path
