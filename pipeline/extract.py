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
  extraction leaves nothing under the final name;
- a damaged archive is refused (:class:`DamagedArchive`, one line "damaged archive: ..."): a tar
  must end with its end-of-archive block where its members end (a plain ``.tar`` cut at a member
  boundary otherwise reads as a shorter, valid archive), a compressed stream must end with its
  checksum, and the errors of tarfile, zipfile, gzip, bz2 and lzma on truncated or corrupt data
  become that line;
- an archive bomb is refused before the disk fills: the members' sizes (from the zip's central
  directory before anything is written; from each tar header before its member is written) are
  summed against ``max_bytes`` and against the free space of the target's disk, and the members
  are counted against ``max_members``.
"""

from __future__ import annotations

import logging
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Iterator

from pipeline import atomic

log = logging.getLogger(__name__)


class UnsafeArchive(ValueError):
    """An archive member that would escape the target folder, or is a link or a special file."""


class NotAnArchive(ValueError):
    """A file that is neither a zip nor a tar archive."""


class DamagedArchive(ValueError):
    """A truncated or corrupt archive, or one that would unpack beyond the caps or the free disk space;
    the message starts with "damaged archive: <archive>: "."""


#: At most this many bytes unpacked from one archive (the largest published data set unpacks to a
#: few GB; a larger total is a bomb or not a data set of these tutorials).
MAX_BYTES = 200 << 30
#: At most this many members (the IDC set, the largest, has about 280 000).
MAX_MEMBERS = 5_000_000
#: Free space left on the target's disk after the extraction, at least.
FREE_MARGIN = 256 << 20
#: Library errors of truncated or corrupt data.
_DATA_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
#: First bytes of compressed streams and zips: such a file that neither opener reads is damaged.
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}


class _Budget:
    """Members and bytes unpacked so far, checked against the caps and the free disk space."""

    def __init__(self, archive: Path, dest: Path, max_bytes: int, max_members: int):
        self.archive, self.dest = archive, dest
        self.max_bytes, self.max_members = max_bytes, max_members
        self.bytes = self.members = 0

    def take(self, size: int, members: int = 1) -> None:
        """Count ``members`` more members of ``size`` bytes in all, before they are written."""
        self.bytes += size
        self.members += members
        if self.members > self.max_members:
            raise DamagedArchive(
                f"damaged archive: {self.archive}: more than {self.max_members} members; refused (an archive bomb?)"
            )
        if self.bytes > self.max_bytes:
            raise DamagedArchive(
                f"damaged archive: {self.archive}: its members hold {self.bytes} bytes so far, more than the "
                f"{self.max_bytes} allowed; refused (an archive bomb?)"
            )
        if size:
            free = shutil.disk_usage(_existing(self.dest)).free
            if size + FREE_MARGIN > free:
                raise DamagedArchive(
                    f"damaged archive: {self.archive}: a member of {size} bytes does not fit: {free} bytes free "
                    f"on {_existing(self.dest)} (keeping {FREE_MARGIN}); refused"
                )


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path a member may be written to; :class:`UnsafeArchive` when it would escape."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and p.parts[0].endswith(":")):
        raise UnsafeArchive(f"{archive}: member {name!r} would escape the extraction folder; refused")
    return p


def _zip_members(archive: Path, budget: _Budget) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        budget.take(sum(i.file_size for i in infos), len(infos))  # the central directory's sizes, all at once
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"{archive}: member {info.filename!r} is a symbolic link; refused")
            if info.is_dir():
                yield info.filename, True, None
            else:
                with zf.open(info) as fh:
                    yield info.filename, False, fh


def _tar_members(archive: Path, budget: _Budget) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    with tarfile.open(archive, mode="r:*") as tf:
        for m in tf:  # streaming: one pass over a compressed archive
            if m.issym() or m.islnk():
                raise UnsafeArchive(f"{archive}: member {m.name!r} is a link (to {m.linkname!r}); refused")
            if m.isdir():
                budget.take(0)
                yield m.name, True, None
            elif m.isfile():
                budget.take(m.size)
                fh = tf.extractfile(m)
                yield m.name, False, fh
            else:
                raise UnsafeArchive(f"{archive}: member {m.name!r} is not a regular file or folder; refused")
        _check_tar_end(tf, archive)


def _check_tar_end(tf: tarfile.TarFile, archive: Path) -> None:
    """The end-of-archive block must follow the last member, and a compressed stream must end whole.

    tarfile stops at the end of the data as at an end-of-archive block: a tar cut at a member boundary
    would read as a valid, shorter archive. POSIX ends an archive with two zero blocks; one is
    required here (GNU tar accepts a lone one). Reading the rest of a gzip/bz2/xz stream checks its
    checksum and length."""
    end = tf.offset
    tf.fileobj.seek(end)
    block = tf.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise DamagedArchive(
            f"damaged archive: {archive}: it ends at byte {end} of its tar data without the end-of-archive "
            f"block (cut short, e.g. an interrupted download or copy); fetch or copy it again"
        )
    while tf.fileobj.read(1 << 20):  # to the end of a compressed stream: its checksum is read there
        pass


def members(
    archive: Path, dest: Path | None = None, max_bytes: int = MAX_BYTES, max_members: int = MAX_MEMBERS
) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    """(name, is_folder, readable stream or None) of each member, in archive order.

    Raises :class:`NotAnArchive` for other files, :class:`UnsafeArchive` at a link member and
    :class:`DamagedArchive` (while iterating) when the archive is truncated or corrupt, or its
    members exceed ``max_bytes``, ``max_members`` or the free space of ``dest``'s disk.
    """
    archive = Path(archive)
    budget = _Budget(archive, Path(dest or archive.parent), max_bytes, max_members)
    try:
        if zipfile.is_zipfile(archive):
            return _zip_members(archive, budget)
        if tarfile.is_tarfile(archive):
            return _tar_members(archive, budget)
    except _DATA_ERRORS as exc:
        raise DamagedArchive(f"damaged archive: {archive}: {exc}; fetch or copy it again") from None
    with open(archive, "rb") as fh:
        head = fh.read(8)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind:
        raise DamagedArchive(
            f"damaged archive: {archive}: a {kind} file that no zip or tar reader opens (truncated or "
            f"corrupt); fetch or copy it again"
        )
    raise NotAnArchive(f"{archive}: neither a zip nor a tar archive")


def extract(
    archive: Path,
    dest: Path,
    show_progress: bool = True,
    max_bytes: int = MAX_BYTES,
    max_members: int = MAX_MEMBERS,
) -> Path:
    """Extract ``archive`` into the folder ``dest`` (see the module docstring for the rules).

    An existing ``dest`` is replaced only when the extraction is complete; on any refusal nothing
    is left behind. Returns ``dest``. Raises :class:`NotAnArchive`, :class:`UnsafeArchive`,
    :class:`DamagedArchive`.
    """
    from tqdm import tqdm

    archive, dest = Path(archive), Path(dest)
    stream = members(archive, dest, max_bytes, max_members)
    n = 0
    with atomic.atomic_path(dest, is_dir=True) as tmp:
        tmp.mkdir(parents=True)
        with tqdm(desc=f"extract {archive.name}", unit="file", disable=not show_progress) as bar:
            try:
                for name, is_dir, fh in stream:
                    rel = member_path(name, archive)
                    target = tmp.joinpath(*rel.parts) if rel.parts else tmp
                    if is_dir:
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        _copy(fh, out, archive, target)
                    n += 1
                    bar.update(1)
            except (DamagedArchive, UnsafeArchive):
                raise
            except _DATA_ERRORS as exc:
                raise DamagedArchive(
                    f"damaged archive: {archive}: {type(exc).__name__}: {exc} (truncated or corrupt); fetch or copy it again"
                ) from None
    log.info("%s: %d files extracted into %s", archive, n, dest)
    return dest


def _copy(src: IO[bytes], out: IO[bytes], archive: Path, target: Path) -> None:
    """Copy a member's bytes; a failed write (disk full) is the disk's fault, not the archive's."""
    while chunk := src.read(1 << 20):
        try:
            out.write(chunk)
        except OSError as exc:
            raise RuntimeError(f"{archive}: writing {target} failed: {exc}") from None
