"""The one reader of a ``<class>/<image>`` tree: a folder, or a zip checked before anything is extracted."""

from __future__ import annotations

import stat
import tempfile
import zipfile
from pathlib import Path

import pytest

from gnet.data.archive import class_tree
from gnet.errors import DatasetError
from tests.conftest import write_colour_folder


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("gnet-classes-*")}


def _zip(path: Path, entries: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_a_folder_is_itself(tmp_path):
    root = write_colour_folder(tmp_path / "set", per_class=1, size=(8, 8))
    with class_tree(root) as found:
        assert found == root


@pytest.mark.parametrize("top", ["", "my_things/"])
def test_a_zip_is_extracted_into_a_private_folder_removed_afterwards(tmp_path, top):
    root = write_colour_folder(tmp_path / "set", classes=("cup", "pen"), per_class=2, size=(8, 8))
    entries = {f"{top}{p.relative_to(root).as_posix()}": p.read_bytes() for p in root.rglob("*.png")}
    entries["__MACOSX/cup/._000.png"] = b"resource fork"
    before = _leftovers()
    with class_tree(_zip(tmp_path / "set.zip", entries)) as found:
        assert sorted(p.name for p in found.iterdir()) == ["cup", "pen"]
        assert sorted(p.name for p in (found / "cup").iterdir()) == ["000.png", "001.png"]
        assert not str(found).startswith(str(tmp_path))
        private = found
    assert not private.exists() and _leftovers() == before


def _hostile(tmp_path: Path, case: str) -> tuple[Path, dict]:
    image = b"\x89PNG\r\n\x1a\n" + bytes(64)
    if case == "dotdot":
        return _zip(tmp_path / "z.zip", {"cup/a.png": image, "../../evil.png": image}), {}
    if case == "absolute":
        return _zip(tmp_path / "z.zip", {"cup/a.png": image, "/tmp/evil.png": image}), {}
    if case == "symlink":
        return _zip(tmp_path / "z.zip", {"cup/a.png": image}, symlink="cup/link.png"), {}
    if case == "many":
        return _zip(tmp_path / "z.zip", {f"cup/{i}.png": image for i in range(6)}), {"max_files": 5}
    # a zip bomb: 50 MB of zeros compress to about 50 KB
    return _zip(tmp_path / "z.zip", {"cup/a.png": image, "cup/bomb.png": bytes(50_000_000)}), {"max_bytes": 10_000_000}


@pytest.mark.parametrize("case, fragment", [
    ("dotdot", "points outside its folder"), ("absolute", "points outside its folder"),
    ("symlink", "symbolic link"), ("many", "more than the 5 allowed"), ("bomb", "unpacks to 50 MB, more than the 10 MB"),
])
def test_a_hostile_zip_is_refused_before_anything_is_extracted(tmp_path, case, fragment):
    path, bounds = _hostile(tmp_path, case)
    assert path.stat().st_size < 200_000
    before = _leftovers()
    with pytest.raises(DatasetError, match=fragment), class_tree(path, **bounds):
        pytest.fail("the block must not run")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["z.zip"]  # nothing written next to it
    assert not (tmp_path.parent / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    assert _leftovers() == before


def test_a_header_that_lies_about_its_size_is_stopped_while_extracting(tmp_path):
    path = _zip(tmp_path / "z.zip", {"cup/a.png": bytes(3_000_000)})
    data = bytearray(path.read_bytes())
    # rewrite the declared uncompressed size (central directory) to 1,000 bytes
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("cup/a.png")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")
    data[22:26] = (1000).to_bytes(4, "little")  # and the first local header's (at offset 0)
    path.write_bytes(bytes(data))
    assert info.file_size == 3_000_000
    # zipfile reads no further than the declared size, then finds the CRC wrong: one sentence either way
    with pytest.raises(DatasetError, match="damaged zip archive|unpacks to more than"), class_tree(path, max_bytes=2_000_000):
        pytest.fail("the block must not run")


def test_not_a_zip_and_missing_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="neither a folder nor a zip"), class_tree(tmp_path / "notes.txt"):
        pass
    with pytest.raises(DatasetError, match="does not exist"), class_tree(tmp_path / "nowhere.zip"):
        pass
