"""Checksums of user-supplied archives: published (match, mismatch, override), unknown, recorded."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace

import pytest

from pipeline import REPO_ROOT, data
from pipeline.download import ChecksumError
from pipeline.usecases import datasets, get
from tests.archive_builders import epi_files, tgz


@pytest.fixture
def archive(tmp_path):
    return tgz(tmp_path / "epi.tgz", epi_files(tmp_path, 1))


def test_published_sha256_matches(archive):
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    check = data.verify(archive, (replace(datasets.EPI, sha256=digest),), allow=False)
    assert (check.status, check.sha256) == ("verified", digest)
    # the same bytes under another name are still recognised by their hash
    other = archive.with_name("epithelium-copy.tgz")
    other.write_bytes(archive.read_bytes())
    assert data.verify(other, (replace(datasets.EPI, sha256=digest),), allow=False).status == "verified"


def test_mismatch_names_archive_both_hashes_and_the_override(archive, monkeypatch):
    monkeypatch.delenv("ALLOW_UNVERIFIED", raising=False)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as err:
        get("epi").prepare_data(archive, archive.parent / "w")
    text = str(err.value)
    assert str(archive) in text and digest in text and datasets.EPI.sha256 in text
    assert "--no-verify" in text and "ALLOW_UNVERIFIED=1" in text
    assert not (archive.parent / "w").exists()  # refused before extracting anything
    monkeypatch.setenv("ALLOW_UNVERIFIED", "1")
    assert get("epi").prepare_data(archive, archive.parent / "w").is_dir()


def test_unknown_archives_are_unverified(archive, tmp_path):
    mine = archive.with_name("my_epithelium.tgz")
    mine.write_bytes(archive.read_bytes())
    check = data.verify(mine, (datasets.EPI,), allow=False)
    assert check.status == "unverified" and "treated as your own data" in check.note
    lym = tmp_path / "lymphocyte.tgz"
    lym.write_bytes(archive.read_bytes())
    check = data.verify(lym, (datasets.LYMPHOCYTE,), allow=False)
    assert check.status == "unverified" and check.note == "no published checksum for lymphocyte.tgz"
    assert check.sha256 is None  # nothing to compare with: not hashed
    assert (
        data.verify(lym, (datasets.LYMPHOCYTE,), always_hash=True).sha256
        == hashlib.sha256(lym.read_bytes()).hexdigest()
    )


def test_data_check_refuses_a_mismatch_unless_told(archive):
    cmd = [sys.executable, "-m", "pipeline", "data", "check", str(archive), "--usecase", "usecase2"]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 1 and "does not match the published sha256 of epi.tgz" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run(cmd + ["--no-verify"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "archive    mismatch (accepted): expected " + datasets.EPI.sha256 in out.stdout
