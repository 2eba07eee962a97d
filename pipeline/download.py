"""Resumable downloads with a progress bar and sha256, and safe archive extraction."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pipeline import atomic

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download that failed (offline, HTTP error, truncated, checksum mismatch)."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, size: int | None = None,
             offline_hint: str = "", show_progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest``, resuming a ``dest.part`` left by an interrupted run.

    Verifies the expected ``size`` and ``sha256`` when given, and records Content-Length and the
    sha256 in ``dest.json``. A file already at ``dest`` with the right checksum is not fetched again.
    """
    from tqdm import tqdm
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        log.info("%s: present%s", dest, " (sha256 verified)" if sha256 else "")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range past the end: the part file is complete
            resp = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot reach {url} ({exc}). Offline? {offline_hint}".strip()) from exc
    total = None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored the range: start again
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length else None
            mode = "ab" if have else "wb"
            with open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                              desc=dest.name, disable=not show_progress) as bar:
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    fh.write(block)
                    bar.update(len(block))
    got = part.stat().st_size
    if (total is not None and got != total) or (size is not None and got != size):
        raise DownloadError(f"{url}: truncated download ({got} bytes, expected {size or total}); rerun to resume")
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256:
        bad = part.with_name(part.name + ".bad")
        part.replace(bad)
        raise DownloadError(f"{url}: sha256 {digest} does not match the expected {sha256} (kept as {bad})")
    part.replace(dest)
    atomic.write_text(dest.with_name(dest.name + ".json"),
                      json.dumps({"url": url, "bytes": got, "content_length": total, "sha256": digest}, indent=1))
    log.info("%s: %d bytes, sha256 %s", dest, got, digest)
    return dest


def _safe_target(root: Path, member: str) -> Path:
    target = (root / member).resolve()
    if root.resolve() not in target.parents and target != root.resolve():
        raise DownloadError(f"archive member {member!r} would escape {root}")
    return target


def extract(archive: Path, dest: Path, show_progress: bool = True) -> Path:
    """Extract a zip or tar archive into ``dest`` safely (no member may leave ``dest``).

    Extraction goes to a temporary folder renamed to ``dest`` when complete; an existing ``dest``
    is kept as it is.
    """
    from tqdm import tqdm
    archive, dest = Path(archive), Path(dest)
    if dest.is_dir():
        log.info("%s: already extracted", dest)
        return dest
    with atomic.atomic_path(dest, is_dir=True) as tmp:
        tmp.mkdir(parents=True)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for m in members:
                    _safe_target(tmp, m.filename)
                for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not show_progress):
                    zf.extract(m, tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _safe_target(tmp, m.name)
                    if m.issym() or m.islnk():
                        raise DownloadError(f"{archive}: link member {m.name!r} refused")
                tf.extractall(tmp, members=members, filter="data")
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive")
    return dest


def copy_verified(src: Path, dest: Path, sha256: str) -> Path:
    """Copy a local file into place after checking its sha256 (offline ``--from`` folders)."""
    digest = sha256_of(src)
    if digest != sha256:
        raise DownloadError(f"{src}: sha256 {digest} does not match the expected {sha256}")
    with atomic.atomic_path(Path(dest)) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)
