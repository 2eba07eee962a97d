"""Data sets on disk: explicit downloads, checksums, safe extraction, and finding the files.

Real data sets are fetched only by explicit commands (``python -m pipeline data fetch <name>``);
tests and demos use generated data. What an archive is (URL, published sha256, accepted layouts)
is declared by the use cases (``pipeline/usecases/datasets.py``); this module receives those
declarations and knows none by name.

Checksums: an archive whose name or sha256 is that of a published one is checked against the
published sha256, whether downloaded or supplied by the user; a mismatch is an error naming the
archive, both hashes and the override (``--no-verify`` or ``ALLOW_UNVERIFIED=1``). Archives
without a published sha256 get theirs recorded at the first download (``<name>.json``) and are
reported as unverified.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from pipeline import atomic, download, extract, layouts
from pipeline.download import ChecksumError
from pipeline.layouts import Layout, Match

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class ArchiveSpec(Protocol):
    """What this module reads of a declared archive (``pipeline.usecases.base.Archive``)."""

    name: str
    url: str
    sha256: str | None
    layouts: tuple[Layout, ...]


def allow_unverified(flag: bool = False) -> bool:
    """True when ``flag`` is set or the environment has ALLOW_UNVERIFIED=1 (or true/yes)."""
    return flag or os.environ.get("ALLOW_UNVERIFIED", "").strip().lower() in ("1", "true", "yes")


@dataclass
class Verification:
    """What is known of an archive's bytes: ``status`` is "verified", "unverified" or "mismatch
    (accepted)"; ``note`` says against what."""

    status: str
    note: str
    sha256: str | None = None


def verify(
    path: Path, archives: Sequence[ArchiveSpec], allow: bool | None = None, always_hash: bool = False
) -> Verification:
    """Check a local archive against the published sha256 of ``archives``.

    - its sha256 equals a published one: verified;
    - it bears a published archive's name but not its sha256: :class:`ChecksumError` naming the
      archive, the expected and the actual hash and the override (with ``allow``: a warning);
    - neither name nor hash is published: unverified; compared with the sha256 recorded at its
      download when ``<name>.json`` is beside it (a difference is an error as above).

    The file is hashed only when there is something to compare with, or ``always_hash``.
    ``allow`` defaults to :func:`allow_unverified`.
    """
    path = Path(path)
    allow = allow_unverified() if allow is None else allow
    published = {a.name: a.sha256 for a in archives if a.sha256}
    rec = download.recorded(path)
    digest = download.sha256_of(path) if (published or rec or always_hash) else None
    override = "rerun with --no-verify (or ALLOW_UNVERIFIED=1) to use it anyway"
    if digest and digest in published.values():
        name = next(n for n, h in published.items() if h == digest)
        return Verification("verified", f"sha256 matches the published {name}", digest)
    if path.name in published:
        msg = (
            f"{path}: sha256 {digest} does not match the published sha256 of {path.name} "
            f"({published[path.name]}): a damaged or different file. Download it again "
            f"(python -m pipeline data fetch), or if it is deliberately another version, {override}"
        )
        if not allow:
            raise ChecksumError(msg)
        log.warning("%s (accepted: ALLOW_UNVERIFIED / --no-verify)", msg)
        return Verification("mismatch (accepted)", f"expected {published[path.name]}", digest)
    if rec and rec.get("sha256"):
        if digest != rec["sha256"]:
            msg = (
                f"{path}: sha256 {digest} differs from the {rec['sha256']} recorded at its download "
                f"({rec.get('date', '?')}, {Path(path).name}.json): the file changed since; {override}"
            )
            if not allow:
                raise ChecksumError(msg)
            log.warning("%s (accepted)", msg)
            return Verification("mismatch (accepted)", f"recorded {rec['sha256']}", digest)
        return Verification(
            "unverified",
            f"no published checksum; matches the sha256 recorded at its download ({rec.get('date', '?')})",
            digest,
        )
    names = ", ".join(published) or ", ".join(a.name for a in archives)
    note = (
        f"not the published {names} (name and sha256 differ): treated as your own data"
        if published
        else f"no published checksum for {names}"
    )
    return Verification("unverified", note, digest)


def _stem(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def extract_cached(archive: Path, cache: Path, show_progress: bool = True) -> Path:
    """``cache/<archive stem>_extracted``: extracted safely once, again when the archive changed
    (size or modification time differ from those recorded in ``<folder>.json``)."""
    archive = Path(archive)
    dest = Path(cache) / f"{_stem(archive.name)}_extracted"
    marker = dest.with_name(dest.name + ".json")
    st = archive.stat()
    ident = {"archive": str(archive.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        if dest.is_dir() and json.loads(marker.read_text()) == ident:
            log.info("%s: already extracted in %s", archive.name, dest)
            return dest
    except (OSError, ValueError):
        pass
    try:
        extract.extract(archive, dest, show_progress=show_progress)
    except extract.NotAnArchive as exc:
        raise FileNotFoundError(f"{exc} (expected an archive or a folder)") from None
    atomic.write_text(marker, json.dumps(ident))
    return dest


def accepted_layouts(archives: Sequence[ArchiveSpec]) -> list[Layout]:
    """Every layout of ``archives``, in declaration order, each once."""
    out: list[Layout] = []
    for a in archives:
        out += [lay for lay in a.layouts if lay not in out]
    return out


def locate(
    data: Path,
    cache: Path,
    archives: Sequence[ArchiveSpec],
    allow: bool | None = None,
    always_hash: bool = False,
    fetch_hint: str = "",
    show_progress: bool = True,
) -> tuple[Match, Verification | None]:
    """Find the images (and masks) of ``data``, an archive or a folder, in the accepted layouts.

    An archive is verified (:func:`verify`) and extracted under ``cache``. Returns the match and
    the verification (None for a folder). Raises FileNotFoundError (what was looked for),
    ChecksumError.
    """
    data = Path(data)
    if data.is_file():
        check = verify(data, archives, allow, always_hash)
        log.info("%s: %s (%s)", data.name, check.status, check.note)
        top = extract_cached(data, cache, show_progress)
    elif data.is_dir():
        check, top = None, data
    else:
        names = " or ".join(a.name for a in archives) or "the archive"
        raise FileNotFoundError(
            f"{data}: neither an archive nor a folder. Download {names} with "
            f"`{fetch_hint or 'python -m pipeline data fetch NAME --dest DIR'}`, "
            "or put it there by hand."
        )
    what = " / ".join(a.name for a in archives) or "data"
    return layouts.find(top, accepted_layouts(archives), what=f"{what} data"), check


def prepare(
    data: Path,
    cache: Path,
    archives: Sequence[ArchiveSpec],
    reads: Sequence[Layout] = (),
    fetch_hint: str = "",
    show_progress: bool = True,
) -> Path:
    """The data's root folder in a layout of ``reads`` (see :func:`locate` and
    :func:`pipeline.layouts.present`)."""
    match, _ = locate(data, cache, archives, fetch_hint=fetch_hint, show_progress=show_progress)
    return layouts.present(match, reads, Path(cache))


def fetch(
    archive: ArchiveSpec, dest: Path, url: str | None = None, verify_hash: bool = True, show_progress: bool = True
) -> Path:
    """Download ``archive`` (from ``url`` if given, e.g. a mirror) into the folder ``dest``.

    Checked against its published sha256 unless ``verify_hash`` is False; without one the sha256
    is recorded beside it as unverified. Resumes an interrupted download.
    """
    url = url or archive.url
    name = archive.name if url == archive.url or url.endswith("/" + archive.name) else url.rsplit("/", 1)[-1]
    # a mirror's file is checked against the published sha256 whatever its name
    sha = archive.sha256 if verify_hash else None
    path = download.fetch(
        url,
        Path(dest) / name,
        sha256=sha,
        show_progress=show_progress,
        offline_hint=f"Download {url} elsewhere and put {name} into {dest} (or pass the archive itself with --data).",
        override_hint=(
            f"if it is deliberately another version than the published {archive.name}, accept it with --no-verify"
            if name != archive.name
            else download.OVERRIDE_HINT
        ),
    )
    if archive.sha256 and sha is None:
        log.warning("%s: NOT checked against the published sha256 (--no-verify)", path)
    return path
