"""``gnet attribute``: the map it writes and prints is the library's, drawn as the app draws it."""

import json

import numpy as np
import pytest
from PIL import Image

import gnet
from gnet.cli import EXIT_USER_ERROR, main
from gnet.data.samples import sample_images
from gnet.inspect.attributions import GRAD_CAM_BRANCH, attribute, grad_cam
from gnet.inspect.drawing import overlay_image
from gnet.net.layers import BRANCHES
from tests.conftest import sample_with_an_empty_grad_cam

BASE = ["--weights", "bundled", "--device", "cpu"]


@pytest.fixture(scope="module")
def bundled():
    return gnet.load("bundled", "cpu")


@pytest.fixture(scope="module")
def sample():
    return sample_images()[0].path


def _json(capsys, argv):
    assert main([*argv, *BASE, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_default_is_grad_cam_of_mains_top_class_where_the_page_starts(bundled, sample, tmp_path, capsys):
    out = tmp_path / "map.png"
    got = _json(capsys, ["attribute", str(sample), "--out", str(out)])
    analysis = gnet.analyze(bundled, sample)
    top = analysis.heads["main"].top[0]
    # At the bundled net's 64 px inception5a and 5b are 2 x 2 and 4e is 4 x 4: the deepest with maps of 4x4 or more.
    assert analysis.modules["inception4e"].output_shape[1] == 4 and analysis.modules["inception5a"].output_shape[1] == 2
    assert (got["method"], got["head"], got["target"], got["layer"]) == (
        "grad_cam", "main", top.index, f"inception4e.{GRAD_CAM_BRANCH}")
    assert got["probability"] == pytest.approx(top.prob) and got["top1"] is True
    x = analysis.input.unsqueeze(0)
    heat = grad_cam(bundled.net, x, top.index, module="inception4e", branch=GRAD_CAM_BRANCH)
    assert got["peak"] == list(np.unravel_index(int(heat.argmax()), heat.shape))
    assert got["above_half_peak"] == pytest.approx(float((heat >= heat.max() / 2).mean()))
    # The PNG: the image the network saw with the map drawn over it, four times larger, pixels kept sharp.
    written = np.asarray(Image.open(out).convert("RGB"))
    assert written.shape == (4 * 64, 4 * 64, 3)
    expected = overlay_image(analysis.image, heat)
    np.testing.assert_array_equal(written[::4, ::4], expected)
    assert not np.array_equal(expected, overlay_image(analysis.image, np.zeros_like(heat)))  # the map shows


def test_a_head_and_class_by_name_with_saliency_as_text_and_as_csv(bundled, sample, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["attribute", str(sample), "aux1:sneaker", "--method", "saliency", "--out", str(out), *BASE]) == 0
    text = capsys.readouterr().out
    analysis = gnet.analyze(bundled, sample)
    sneaker = bundled.classes.index("Sneaker")
    assert text.startswith("Saliency: aux1 -> Sneaker (aux1 gives it ")
    assert f"{float(analysis.heads['aux1'].probs[sneaker]):.1%}" in text
    assert f"top-1 is {analysis.heads['aux1'].top[0].label}" in text or analysis.heads["aux1"].top[0].index == sneaker
    assert f"wrote {out} (256 x 256)" in text
    assert main(["attribute", str(sample), "aux1:7", "--method", "saliency", "--out", str(out), *BASE, "--csv"]) == 0
    rows = np.loadtxt(capsys.readouterr().out.splitlines(), delimiter=",")
    expected = attribute(bundled, analysis.input.unsqueeze(0), "saliency", head="aux1", target=7).heatmap
    assert rows.shape == (64, 64)
    np.testing.assert_allclose(rows, expected, atol=5e-5)  # written with four decimals


def test_an_empty_grad_cam_names_the_branches_that_find_evidence(bundled, tmp_path, capsys):
    s, found = sample_with_an_empty_grad_cam(bundled)
    empty = next(b for b, any_evidence in found.items() if not any_evidence)
    others = [b for b in BRANCHES if b != empty and found[b]]
    argv = ["attribute", str(s.path), "--layer", f"inception4e.{empty}", "--out", str(tmp_path / "e.png")]
    got = _json(capsys, argv)
    assert got["blank"] is True and got["branches_with_evidence"] == others
    assert main([*argv, *BASE]) == 0
    text = capsys.readouterr().out
    assert f"warning: the map is empty: on inception4e.{empty}, no position supports" in text
    assert (f"try --layer inception4e.{others[0]}" if others else "no other branch of inception4e does either") in text


@pytest.mark.parametrize(("argv", "says"), [
    (["aux1", "--layer", "inception4e.1x1"], "aux1 branches off before inception4e"),
    (["main:Blouse"], "'Blouse' is not a class of these weights"),
    (["inception4a.1x1"], "is not a head or a head's class"),
    (["--method", "saliency", "--layer", "inception4a.1x1"], "saliency reads none: drop --layer"),
    (["--layer", "inception4a.1x1:3"], "write --layer inception4a.1x1"),
    (["--layer", "inception9z.1x1"], "Unknown module 'inception9z'"),
])
def test_a_users_mistake_is_one_sentence_and_exit_2(sample, tmp_path, capsys, argv, says):
    out = tmp_path / "never.png"
    assert main(["attribute", str(sample), *argv, "--out", str(out), *BASE]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_broken_image_and_an_unwritable_path_are_user_errors(sample, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main(["attribute", str(broken), "--out", str(tmp_path / "m.png"), *BASE]) == EXIT_USER_ERROR
    assert "is not an image PIL can decode" in capsys.readouterr().err
    assert main(["attribute", str(sample), "--out", str(tmp_path / "no" / "m.png"), *BASE]) == EXIT_USER_ERROR
    assert "choose a writable path" in capsys.readouterr().err
