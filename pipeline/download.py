"""Downloads with pooch: progress bar, sha256 check, resuming, a clear offline message.

pooch (the fetcher scikit-image uses for its own data) does the bookkeeping: it writes into a
temporary file in the destination folder, checks the hash, and moves the file into place only when
it matches; a file already present with the right hash is not fetched again. Its
``HTTPDownloader`` starts over after an interruption, which would cost a 1.6 GB IDC zip in full, so
:class:`ResumableDownloader` extends it: the bytes go to ``<name>.part`` beside the destination, and
a later run asks the server for the rest with an HTTP ``Range`` header (through requests, pooch's
own HTTP client). A server that ignores the range sends the whole file again, which then replaces
the part. The part keeps the server's validator beside it (``<name>.part.json``: URL, ETag,
Last-Modified, size): the resumed request sends it as ``If-Range``, so a file changed upstream comes
whole instead of as its new tail; a ranged answer is appended only when its ``Content-Range`` starts
where the part ends and its ETag, Last-Modified and size are those of the part, else the whole file
is fetched again. A part without a record (or of another URL) is not resumed.

Beside each download ``<name>.json`` records the URL, size, sha256 and whether that sha256 was
checked against a published one (``verified``) or only recorded at this first download.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import shutil
from pathlib import Path

import pooch

from pipeline import atomic

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download that failed: offline, HTTP error, interrupted, or a checksum mismatch."""


class ChecksumError(DownloadError):
    """A file whose sha256 differs from the expected one; the message names both and the way out."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (pooch's ``file_hash``)."""
    return pooch.file_hash(str(path), alg="sha256")


class ResumableDownloader(pooch.HTTPDownloader):
    """pooch's HTTP downloader (``downloader(url, output_file, pooch)``), resuming ``part``.

    ``HTTPDownloader.__call__`` opens the output file for writing before it sees the response, so
    it can neither append nor learn whether the server honoured a range; this ``__call__`` keeps
    its contract (same arguments, requests, a tqdm progress bar) and adds both. ``check_only`` is
    pooch's own.
    """

    def __init__(
        self,
        part: Path,
        progressbar: bool = True,
        timeout: float = 30.0,
        offline_hint: str = "",
        chunk_size: int = 1 << 16,
    ) -> None:
        super().__init__(progressbar=progressbar, chunk_size=chunk_size, timeout=timeout)
        self.part = Path(part)
        self.timeout = timeout
        self.offline_hint = offline_hint

    def __call__(self, url: str, output_file: str, pooch_instance, check_only: bool = False):

        if check_only:
            return super().__call__(url, output_file, pooch_instance, check_only=True)
        have = self.part.stat().st_size if self.part.is_file() else 0
        meta = read_part_record(self.part) if have else None
        if have and (meta is None or meta.get("url") != url):
            log.warning("%s: no record of where its %d bytes came from: downloading from the start", self.part, have)
            have = 0
        headers = {}
        if have:
            headers["Range"] = f"bytes={have}-"
            validator = meta.get("etag") if not str(meta.get("etag") or "").startswith("W/") else None
            validator = validator or meta.get("last_modified")
            if validator:
                headers["If-Range"] = validator
        resp = self._get(url, headers)
        if have and resp.status_code == 206:
            problem = range_problem(resp.headers, have, meta)
            if problem:
                log.warning("%s: %s; downloading the whole file again", url, problem)
                resp.close()
                have, resp = 0, self._get(url, {})
        with resp:
            if resp.status_code == 416 and have:  # nothing after the end: the part may be complete
                self._check_complete(url, have, resp.headers.get("Content-Range", ""))
            else:
                if resp.status_code >= 400:
                    raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                if have and resp.status_code != 206:
                    log.info("%s: the server sent the whole file (changed upstream, or ranges ignored)", url)
                    have = 0
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length else None
                if not have:
                    self._record_part(url, resp.headers, total)
                self._stream(url, resp, have, total)
        # pooch moves output_file into place when its hash matches and deletes it otherwise: hand it
        # a hard link, so that a mismatching download stays on disk as the part
        Path(output_file).unlink(missing_ok=True)
        os.link(self.part, output_file)

    def _get(self, url: str, headers: dict):
        import requests

        try:
            return requests.get(url, headers=headers, stream=True, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DownloadError(
                f"cannot reach {url} ({type(exc).__name__}). Offline? {self.offline_hint}".strip()
            ) from exc

    def _record_part(self, url: str, headers, total: int | None) -> None:
        """Write ``<part>.json`` before the part's first byte: where it comes from and its validators."""
        self.part.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(
            part_record_path(self.part),
            json.dumps(
                {
                    "url": url,
                    "etag": headers.get("ETag"),
                    "last_modified": headers.get("Last-Modified"),
                    "bytes": total,
                }
            ),
        )

    def _stream(self, url: str, resp, have: int, total: int | None) -> None:
        import requests
        from tqdm import tqdm

        self.part.parent.mkdir(parents=True, exist_ok=True)
        with (
            open(self.part, "ab" if have else "wb") as fh,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=self.part.name[:-5],
                disable=not self.progressbar,
            ) as bar,
        ):
            try:
                for block in resp.iter_content(self.chunk_size):
                    fh.write(block)
                    bar.update(len(block))
            except requests.RequestException as exc:
                raise DownloadError(
                    f"{url}: interrupted after {fh.tell()} bytes ({type(exc).__name__}); "
                    f"rerun the same command to resume from {self.part}"
                ) from exc
        got = self.part.stat().st_size
        if total is not None and got != total:
            raise DownloadError(
                f"{url}: truncated download ({got} of {total} bytes); rerun the same command to resume from {self.part}"
            )

    def _check_complete(self, url: str, have: int, content_range: str) -> None:
        size = content_range.rsplit("/", 1)[-1]
        if size.isdigit() and int(size) != have:
            raise DownloadError(f"{self.part}: {have} bytes, but {url} has {size}; delete it and rerun")


def part_record_path(part: Path) -> Path:
    """``<name>.part.json``: the record of a part's source and validators."""
    return Path(part).with_name(Path(part).name + ".json")


def read_part_record(part: Path) -> dict | None:
    """The record :class:`ResumableDownloader` keeps beside a part, or None."""
    try:
        rec = json.loads(part_record_path(part).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def range_problem(headers, have: int, meta: dict) -> str | None:
    """Why a 206 answer to ``Range: bytes=<have>-`` must not be appended to the part, or None: its
    ``Content-Range`` must start at ``have``, and its ETag, Last-Modified and total size must be
    those recorded with the part (where both sides give them)."""
    m = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
    if not m:
        return f"a partial answer without a usable Content-Range ({headers.get('Content-Range')!r})"
    if int(m.group(1)) != have:
        return f"the range sent starts at byte {m.group(1)}, not at {have} where the part ends"
    total = m.group(3)
    if total.isdigit() and meta.get("bytes") is not None and int(total) != meta["bytes"]:
        return f"the file has {total} bytes now, {meta['bytes']} when the part was started (changed upstream)"
    for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
        now = headers.get(header)
        if now and meta.get(key) and now != meta[key]:
            return f"its {header} is {now} now, {meta[key]} when the part was started (changed upstream)"
    return None


OVERRIDE_HINT = "accept it deliberately with --no-verify (or ALLOW_UNVERIFIED=1)"


def fetch(
    url: str,
    dest: Path,
    sha256: str | None = None,
    offline_hint: str = "",
    show_progress: bool = True,
    timeout: float = 30.0,
    override_hint: str = OVERRIDE_HINT,
) -> Path:
    """Download ``url`` to ``dest`` with pooch, resuming ``dest.part``; check ``sha256`` when given.

    A ``dest`` already present with the expected sha256 (or, without one, present at all) is kept.
    On a mismatch the download is kept as ``dest.part`` and :class:`ChecksumError` names the URL,
    the expected and the actual sha256, and ``override_hint`` (how to accept it anyway). Writes
    ``dest.json`` (see the module docstring).
    """
    dest = Path(dest).absolute()
    part = dest.with_name(dest.name + ".part")
    dl = ResumableDownloader(part, progressbar=show_progress, timeout=timeout, offline_hint=offline_hint)
    if part.is_file():
        log.info("%s: resuming after %d bytes", dest.name, part.stat().st_size)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}" if sha256 else None,
            fname=dest.name,
            path=dest.parent,
            downloader=dl,
            progressbar=show_progress,
        )
    except ValueError as exc:
        if sha256 is None or not part.is_file():
            raise DownloadError(f"{url}: {exc}") from exc
        raise ChecksumError(
            f"{dest.name}: sha256 {sha256_of(part)} (downloaded from {url}) does not match the "
            f"expected {sha256}. The download is kept as {part}: delete it to download again"
            + (f", or {override_hint}" if override_hint else "")
        ) from exc
    part.unlink(missing_ok=True)
    part_record_path(part).unlink(missing_ok=True)
    digest = sha256_of(dest)
    rec = recorded(dest)
    if rec is None or rec.get("sha256") != digest or rec.get("verified") != (sha256 is not None):
        if rec is not None and rec.get("sha256") != digest:
            log.warning(
                "%s: sha256 %s differs from the %s recorded on %s; recording the new one",
                dest,
                digest,
                rec.get("sha256"),
                rec.get("date", "?"),
            )
        record(dest, url, digest, verified=sha256 is not None)
    return dest


def record(dest: Path, url: str, sha256: str, verified: bool) -> Path:
    """Write ``dest.json``: URL, bytes, sha256, whether it was checked against a published one, date."""
    path = Path(dest).with_name(Path(dest).name + ".json")
    atomic.write_text(
        path,
        json.dumps(
            {
                "url": url,
                "bytes": Path(dest).stat().st_size,
                "sha256": sha256,
                "verified": verified,
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            indent=1,
        ),
    )
    log.info(
        "%s: %d bytes, sha256 %s (%s)",
        dest,
        Path(dest).stat().st_size,
        sha256,
        "matches the published checksum" if verified else "no published checksum: recorded, unverified",
    )
    return path


def recorded(dest: Path) -> dict | None:
    """The record :func:`record` wrote beside ``dest``, or None."""
    path = Path(dest).with_name(Path(dest).name + ".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def copy_verified(src: Path, dest: Path, sha256: str) -> Path:
    """Copy a local file into place after checking its sha256 (offline ``--from`` folders)."""
    digest = sha256_of(src)
    if digest != sha256:
        raise ChecksumError(f"{src}: sha256 {digest} does not match the expected {sha256}")
    with atomic.atomic_path(Path(dest)) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


def hash_matches(path: Path, sha256: str) -> bool:
    """Whether a file's sha256 is ``sha256`` (pooch's check)."""
    return pooch.hash_matches(str(path), f"sha256:{sha256}")
