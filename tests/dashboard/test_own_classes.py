"""The Heads page's "Your own classes" panel, run by Streamlit's AppTest: a zip in, the three heads retrained, and back."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import Keys
from tests.conftest import write_colour_folder
from tests.dashboard.test_app import _ok
from tests.dashboard.test_app import _open as open_page

CLASSES = ["mug", "pen", "spoon"]


@pytest.fixture(autouse=True)
def bundled(monkeypatch, tmp_path):
    monkeypatch.setenv("GNET_WEIGHTS", "bundled")
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))


def zipped(root: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, f"things/{p.relative_to(root).as_posix()}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buffer.getvalue()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=Keys.OWN_CLASSES_ZIP).set_value((name, data, "application/zip")).run()
    return at


def test_a_zip_retrains_the_heads_and_every_page_follows_until_going_back(tmp_path):
    root = write_colour_folder(tmp_path / "things", classes=tuple(CLASSES), per_class=5, size=(40, 40))
    at = _upload(open_page("heads"), "things.zip", zipped(root))
    _ok(at)
    at.button(key=Keys.OWN_CLASSES_RUN).click().run()
    _ok(at)
    (success,) = at.success
    assert "now answer in your 3 classes (mug, pen, spoon)" in success.value and "things.zip (15 images)" in success.value
    held = next(d.value for d in at.dataframe if "accuracy" in d.value.columns and len(d.value) == 3)
    assert held["head"].tolist() == ["main", "aux1", "aux2"] and held["accuracy"].between(0, 1).all()
    assert any("Heads retrained on" in c.value for c in at.sidebar.caption)
    assert any("+ heads for 3 new classes" in e.label for e in at.sidebar.expander)
    mine = next(d.value for d in at.dataframe if "top class" in d.value.columns)
    assert set(mine["top class"][:3]) <= set(CLASSES) and mine["head"].iloc[-1] == "main (original classes)"
    at.text_input(key=Keys.HEADS_FOLDER).input(str(root)).run()  # the test-set views, on a folder of the new classes
    _ok(at)
    assert any("things (15 images)" in c.value and "15 with a label these weights know" in c.value for c in at.caption)
    at.switch_page("routes/overview.py").run()  # another page speaks the new classes too
    _ok(at)
    assert any("+ heads for 3 new classes" in e.label for e in at.sidebar.expander)
    at.switch_page("routes/heads.py").run()
    at.button(key=Keys.OWN_CLASSES_BACK).click().run()
    _ok(at)
    assert not at.success and not any("Heads retrained on" in c.value for c in at.sidebar.caption)
    assert not any("new classes" in e.label for e in at.sidebar.expander)


@pytest.mark.parametrize("extra, fragment", [
    ({"../../escape.png": b"x"}, "points outside its folder"),
    ({}, "one class subfolder"),
])
def test_a_bad_zip_is_one_error_and_the_page_stays(tmp_path, extra, fragment):
    classes = ("mug", "pen") if extra else ("mug",)
    root = write_colour_folder(tmp_path / "things", classes=classes, per_class=3, size=(32, 32))
    at = _upload(open_page("heads"), "bad.zip", zipped(root, extra=extra))
    at.button(key=Keys.OWN_CLASSES_RUN).click().run()
    assert not at.exception
    assert len(at.error) == 1 and fragment in at.error[0].value
    assert "Linear probes: how much of the answer a linear layer reads at each depth" in [s.value for s in at.subheader]
    assert Keys.LABELS_OVERLAY not in at.session_state


def test_classes_added_one_by_one_go_through_the_same_reader(tmp_path):
    root = write_colour_folder(tmp_path / "things", classes=("mug", "pen"), per_class=3, size=(40, 40))
    at = open_page("heads")
    at.radio(key=Keys.OWN_CLASSES_INPUT).set_value("Class by class").run()
    for name in ("mug", "pen"):
        files = [(p.name, p.read_bytes(), "image/png") for p in sorted((root / name).iterdir())]
        at.text_input(key=Keys.OWN_CLASS_NAME).input(name)
        at.file_uploader(key=Keys.OWN_CLASS_IMAGES).set_value(files)
        next(b for b in at.button if b.label == "Add this class").click().run()
        _ok(at)
    assert any("**mug** (3 images), **pen** (3 images)" in c.value for c in at.caption)
    at.button(key=Keys.OWN_CLASSES_RUN).click().run()
    _ok(at)
    assert "now answer in your 2 classes (mug, pen)" in at.success[0].value


def test_a_class_without_a_name_is_one_error(tmp_path):
    at = open_page("heads")
    at.radio(key=Keys.OWN_CLASSES_INPUT).set_value("Class by class").run()
    next(b for b in at.button if b.label == "Add this class").click().run()
    assert not at.exception and len(at.error) == 1 and "Name the class" in at.error[0].value
