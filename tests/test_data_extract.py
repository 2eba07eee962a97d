"""Safe extraction: members escaping the folder, links and special files are refused; nothing is
left behind; a complete extraction replaces the folder only at the end."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from pipeline import extract


def _tar(path, *members):
    with tarfile.open(path, "w:gz") as tf:
        for info, payload in members:
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _file(name, payload=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, payload


def _special(name, kind, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, None


def test_a_good_tar_and_zip_are_extracted(tmp_path):
    t = _tar(tmp_path / "ok.tgz", _file("./a/b.txt", b"hello"), _file("c.txt"))
    out = extract.extract(t, tmp_path / "out", show_progress=False)
    assert (out / "a" / "b.txt").read_bytes() == b"hello" and (out / "c.txt").is_file()
    z = tmp_path / "ok.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("d/", "")
        zf.writestr("d/e.txt", "e")
    assert (extract.extract(z, tmp_path / "zout", show_progress=False) / "d" / "e.txt").read_text() == "e"


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_zip_members_escaping_the_folder_are_refused(tmp_path, name):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok/a.txt", "a")
        zf.writestr(name, "b")
    with pytest.raises(extract.UnsafeArchive, match="would escape the extraction folder"):
        extract.extract(z, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [z]  # no partial folder left


@pytest.mark.parametrize(
    "member, message",
    [
        (_file("../escape.txt"), "would escape"),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_special("hard", tarfile.LNKTYPE, "ok.txt"), "is a link"),
        (_special("dev", tarfile.CHRTYPE), "not a regular file or folder"),
        (_special("fifo", tarfile.FIFOTYPE), "not a regular file or folder"),
    ],
)
def test_tar_escapes_links_and_special_files_are_refused(tmp_path, member, message):
    t = _tar(tmp_path / "evil.tgz", _file("ok.txt"), member)
    with pytest.raises(extract.UnsafeArchive, match=message):
        extract.extract(t, tmp_path / "out", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tgz"]


def test_zip_symlink_member_is_refused(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16  # S_IFLNK: a symbolic link as zip -y stores it
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(extract.UnsafeArchive, match="symbolic link"):
        extract.extract(z, tmp_path / "out", show_progress=False)


def test_an_existing_folder_is_replaced_only_by_a_complete_extraction(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(extract.UnsafeArchive):
        extract.extract(
            _tar(tmp_path / "bad.tgz", _file("new.txt"), _file("../x")), tmp_path / "out", show_progress=False
        )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.txt"]
    extract.extract(_tar(tmp_path / "good.tgz", _file("new.txt")), tmp_path / "out", show_progress=False)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


def test_not_an_archive(tmp_path):
    (tmp_path / "x.tgz").write_bytes(b"not an archive")
    with pytest.raises(extract.NotAnArchive, match="neither a zip nor a tar"):
        extract.extract(tmp_path / "x.tgz", tmp_path / "out", show_progress=False)
