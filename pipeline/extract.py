"""Safe extraction of zip and tar archives (the data sets as published: .zip, .tgz, .tar).

Why not pooch's ``Unzip``/``Untar`` processors: ``Unzip`` silently rewrites members such as
``../x`` or ``/x`` into the target folder instead of refusing them, and ``Untar`` passes tarfile's
``data`` filter only on Python >= 3.12 (this project runs 3.11.2, whose tarfile has no filters),
so links, device files and escaping names would be extracted as they are. Neither writes to a
temporary folder first. Here:

- every member must stay inside the target folder (no absolute names, no ``..``);
- only regular files and folders are written: links (symbolic or hard), devices and FIFOs are
  refused, as are zip members whose mode marks them as links;
- files are written with default permissions and the current owner (no modes or owners taken from
  the archive);
- everything goes to a temporary folder renamed to the target when complete, so an interrupted
  extraction leaves nothing under the final name.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Iterator

from pipeline import atomic

log = logging.getLogger(__name__)


class UnsafeArchive(ValueError):
    """An archive member that would escape the target folder, or is a link or a special file."""


class NotAnArchive(ValueError):
    """A file that is neither a zip nor a tar archive."""


def member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path a member may be written to; :class:`UnsafeArchive` when it would escape."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
        raise UnsafeArchive(f"{archive}: member {name!r} would escape the extraction folder; refused")
    return p


def _zip_members(archive: Path) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"{archive}: member {info.filename!r} is a symbolic link; refused")
            if info.is_dir():
                yield info.filename, True, None
            else:
                with zf.open(info) as fh:
                    yield info.filename, False, fh


def _tar_members(archive: Path) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    with tarfile.open(archive, mode="r:*") as tf:
        for m in tf:  # streaming: one pass over a compressed archive
            if m.issym() or m.islnk():
                raise UnsafeArchive(f"{archive}: member {m.name!r} is a link (to {m.linkname!r}); refused")
            if m.isdir():
                yield m.name, True, None
            elif m.isfile():
                fh = tf.extractfile(m)
                yield m.name, False, fh
            else:
                raise UnsafeArchive(f"{archive}: member {m.name!r} is not a regular file or folder; refused")


def members(archive: Path) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    """(name, is_folder, readable stream or None) of each member, in archive order.

    Raises :class:`NotAnArchive` for other files and :class:`UnsafeArchive` at a link member.
    """
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        return _zip_members(archive)
    if tarfile.is_tarfile(archive):
        return _tar_members(archive)
    raise NotAnArchive(f"{archive}: neither a zip nor a tar archive")


def extract(archive: Path, dest: Path, show_progress: bool = True) -> Path:
    """Extract ``archive`` into the folder ``dest`` (see the module docstring for the rules).

    An existing ``dest`` is replaced only when the extraction is complete; on any refusal nothing
    is left behind. Returns ``dest``.
    """
    from tqdm import tqdm

    archive, dest = Path(archive), Path(dest)
    stream = members(archive)
    n = 0
    with atomic.atomic_path(dest, is_dir=True) as tmp:
        tmp.mkdir(parents=True)
        with tqdm(desc=f"extract {archive.name}", unit="file", disable=not show_progress) as bar:
            for name, is_dir, fh in stream:
                rel = member_path(name, archive)
                target = tmp.joinpath(*rel.parts) if rel.parts else tmp
                if is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    shutil.copyfileobj(fh, out, 1 << 20)
                n += 1
                bar.update(1)
    log.info("%s: %d files extracted into %s", archive, n, dest)
    return dest
