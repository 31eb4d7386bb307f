"""A ``<class>/<image>`` tree from a folder or a ``.zip`` of the same layout: the one reader the CLI and the app share.

A zip comes from a user (an upload, a download) and is checked before anything is extracted:
no entry may climb out with ``..`` or start at an absolute path (or a drive), none may be a
symlink, and it may hold at most :data:`MAX_FILES` entries and :data:`MAX_BYTES` uncompressed
(a zip bomb declares a small archive and a huge content). It is then extracted, entry by entry
and counting the bytes actually written (a header can lie about its size), into a private
temporary folder that is removed when the block ends, whatever happens.

The standard library's ``zipfile.extractall`` sanitises names but follows none of these bounds,
and ``shutil.unpack_archive`` neither, which is why the checks are written here.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import DatasetError

__all__ = ["MAX_BYTES", "MAX_FILES", "class_tree"]

MAX_FILES = 20_000  # entries in one archive: a few hundred images per class for dozens of classes
MAX_BYTES = 2 * 1024**3  # uncompressed bytes in one archive (2 GiB)
_CHUNK = 1 << 20


@contextmanager
def class_tree(path: Path | str, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> Iterator[Path]:
    """The folder to read ``<class>/<image>`` from: ``path`` itself, or a ``.zip``'s checked content.

    A zip whose entries all sit below one top folder yields that folder. Raises
    :class:`DatasetError` for a missing path, a file that is not a zip, or a hostile zip; nothing
    is written outside the temporary folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} does not exist: give a folder of <class>/<image> or a .zip of one.")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path.name} is neither a folder nor a zip archive: give a folder of <class>/<image> or a .zip of one.")
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="gnet-classes-") as tmp:
        entries = _checked(archive, path.name, max_files, max_bytes)
        root = Path(tmp)
        try:
            _extract(archive, entries, root, path.name, max_bytes)
        except (zipfile.BadZipFile, EOFError) as e:
            raise DatasetError(f"{path.name} is a damaged zip archive ({e}): zip the folder again.") from None
        tops = {PurePosixPath(e.filename).parts[0] for e in entries}
        only = root / next(iter(tops)) if len(tops) == 1 else root
        yield only if only.is_dir() and any(p.is_dir() for p in only.iterdir()) else root


def _checked(archive: zipfile.ZipFile, name: str, max_files: int, max_bytes: int) -> list[zipfile.ZipInfo]:
    entries = archive.infolist()
    if len(entries) > max_files:
        raise DatasetError(f"{name} holds {len(entries):,} entries, more than the {max_files:,} allowed: split it.")
    total = 0
    for entry in entries:
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        if entry.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DatasetError(f"{name} has an entry that points outside its folder ({entry.filename!r}): refused.")
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise DatasetError(f"{name} holds a symbolic link ({entry.filename!r}): zip the images themselves.")
        total += entry.file_size
    if total > max_bytes:
        raise DatasetError(
            f"{name} unpacks to {total / 1e6:,.0f} MB, more than the {max_bytes / 1e6:,.0f} MB allowed: send fewer or smaller images."
        )
    return [e for e in entries if not e.is_dir() and not any(p.startswith(("__MACOSX", ".")) for p in PurePosixPath(e.filename).parts)]


def _extract(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], root: Path, name: str, max_bytes: int) -> None:
    """Copy each entry below ``root``, stopping once more than ``max_bytes`` came out, whatever the headers said."""
    written = 0
    for entry in entries:
        target = root.joinpath(*PurePosixPath(entry.filename).parts)
        if not target.resolve().is_relative_to(root.resolve()):  # the checks above make this unreachable; kept as a guard
            raise DatasetError(f"{name} has an entry that points outside its folder ({entry.filename!r}): refused.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(entry) as source, open(target, "wb") as out:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise DatasetError(
                        f"{name} unpacks to more than the {max_bytes / 1e6:,.0f} MB allowed: send fewer or smaller images."
                    )
                out.write(chunk)
