"""Downloads through pooch from a local HTTP server on 127.0.0.1 (never the network): resuming,
published / unknown checksums, mismatches, the offline message, and the released-model fetcher."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from pipeline import REPO_ROOT, data, download, released
from pipeline.usecases import datasets

PAYLOAD = bytes(range(256)) * 1600  # 409,600 bytes: several 64 KiB chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path; honours ``Range: bytes=N-`` (206, or 416 past the end)."""

    cut = None  # close the connection after this many body bytes (Content-Length says all)
    ignore_range = False  # answer 200 with the whole file even when a range is asked
    ranges: list = []  # Range headers received

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        _Handler.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng and not self.ignore_range else 0
        if start >= len(PAYLOAD) and rng:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:  # a 206 names the range it sends (a resume checks it)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.end_headers()
        self.wfile.write(body[: self.cut] if self.cut is not None else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.cut, _Handler.ignore_range, _Handler.ranges = None, False, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    _Handler.cut = 300000
    with pytest.raises(download.DownloadError, match="rerun the same command to resume"):
        download.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=SHA, show_progress=False, timeout=5)
    have = (tmp_path / "f.bin.part").stat().st_size
    # the complete 64 KiB chunks received are kept (the cut one is lost with the connection)
    assert have == 4 * 65536 and not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:have]
    _Handler.cut = None
    out = download.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=SHA, show_progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    assert _Handler.ranges == [None, f"bytes={have}-"]
    rec = json.loads((tmp_path / "f.bin.json").read_text())
    assert rec["sha256"] == SHA and rec["bytes"] == len(PAYLOAD) and rec["verified"] is True
    # present and verified: not fetched again
    download.fetch(f"{server}/f.bin", tmp_path / "f.bin", sha256=SHA, show_progress=False, timeout=5)
    assert len(_Handler.ranges) == 2


def test_a_server_ignoring_the_range_sends_the_whole_file_again(server, tmp_path):
    (tmp_path / "g.bin.part").write_bytes(PAYLOAD[:1000])
    _Handler.ignore_range = True
    out = download.fetch(f"{server}/g.bin", tmp_path / "g.bin", sha256=SHA, show_progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD


def test_mismatch_keeps_the_download_and_names_both_hashes(server, tmp_path):
    with pytest.raises(download.ChecksumError) as err:
        download.fetch(f"{server}/h.bin", tmp_path / "h.bin", sha256="0" * 64, show_progress=False, timeout=5)
    text = str(err.value)
    assert text.startswith("h.bin: sha256 " + SHA) and "0" * 64 in text and "--no-verify" in text
    assert not (tmp_path / "h.bin").exists() and (tmp_path / "h.bin.part").read_bytes() == PAYLOAD
    # the rerun asks for the rest, learns the part is complete (416) and fails the same way, no re-download
    with pytest.raises(download.ChecksumError):
        download.fetch(f"{server}/h.bin", tmp_path / "h.bin", sha256="0" * 64, show_progress=False, timeout=5)
    assert _Handler.ranges[-1] == f"bytes={len(PAYLOAD)}-"
    # accepted deliberately (no expected hash): the kept part becomes the file, recorded as unverified
    out = download.fetch(f"{server}/h.bin", tmp_path / "h.bin", sha256=None, show_progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD and json.loads((tmp_path / "h.bin.json").read_text())["verified"] is False


def test_offline_and_http_errors_are_one_clear_line(tmp_path):
    with pytest.raises(download.DownloadError, match=r"cannot reach http://127.0.0.1:9/none .*Offline\? put it"):
        download.fetch(
            "http://127.0.0.1:9/none",
            tmp_path / "n.bin",
            show_progress=False,
            timeout=2,
            offline_hint="put it there by hand",
        )
    assert not list(tmp_path.iterdir())


def test_published_and_unknown_checksums_through_data_fetch(server, tmp_path):
    # a published archive (its sha256 declared) served by a mirror: checked, recorded as verified
    epi = replace(datasets.EPI, url=f"{server}/epi.tgz", sha256=SHA)
    path = data.fetch(epi, tmp_path, show_progress=False)
    assert json.loads(path.with_name("epi.tgz.json").read_text())["verified"] is True
    assert data.verify(path, (epi,)).status == "verified"
    # no published sha256: the first download's is recorded and the archive reported as unverified
    lym = replace(datasets.LYMPHOCYTE, url=f"{server}/lymphocyte.tgz")
    path = data.fetch(lym, tmp_path, show_progress=False)
    rec = json.loads(path.with_name("lymphocyte.tgz.json").read_text())
    assert rec["verified"] is False and rec["sha256"] == SHA
    check = data.verify(path, (lym,))
    assert check.status == "unverified" and "matches the sha256 recorded at its download" in check.note
    path.write_bytes(PAYLOAD[::-1])  # changed since its download
    with pytest.raises(download.ChecksumError, match="differs from the .* recorded at its download"):
        data.verify(path, (lym,), allow=False)


def test_data_fetch_command_against_the_local_server(server, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "data",
        "fetch",
        "tubule",
        "--url",
        f"{server}/tubule.tgz",
        "--dest",
        str(tmp_path),
    ]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    # tubule.tgz has a published sha256 and the server's bytes are not it: refused, the part kept
    assert out.returncode == 1 and "tubule.tgz: sha256 " + SHA in out.stderr
    assert datasets.TUBULE.sha256 in out.stderr and (tmp_path / "tubule.tgz.part").is_file()
    out = subprocess.run(cmd + ["--no-verify"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "UNVERIFIED" in out.stdout and SHA in out.stdout and (tmp_path / "tubule.tgz").read_bytes() == PAYLOAD
    # the old spelling `data <name>` still downloads
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "data",
            "lymphocyte",
            "--url",
            f"{server}/lymphocyte.tgz",
            "--dest",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "no published checksum" in out.stdout


def test_released_fetcher_uses_the_same_download_path(server, tmp_path, monkeypatch):
    """fetch-released downloads through download.fetch: a file of the table served locally."""
    table = {
        "commit": "c",
        "url_pattern": server + "/{folder}/{sub}{file}",
        "folders": {"uc9-x": "x"},
        "files": [{"path": "uc9-x/w.caffemodel", "sha256": SHA, "bytes": len(PAYLOAD)}],
    }
    monkeypatch.setattr(released, "table", lambda: table)
    files = released.fetch(["uc9-x"], tmp_path, show_progress=False)
    assert files == [tmp_path / "uc9-x" / "w.caffemodel"] and files[0].read_bytes() == PAYLOAD
    table["files"][0]["sha256"] = "1" * 64
    (tmp_path / "uc9-x" / "w.caffemodel").unlink()
    with pytest.raises(download.ChecksumError) as err:
        released.fetch(["uc9-x"], tmp_path, show_progress=False)
    assert "--no-verify" not in str(err.value)  # the released files must match: no override offered
