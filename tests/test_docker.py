"""The Dockerfiles build Caffe with the shared script and lint clean (no Docker engine here)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import REPO_ROOT

DOCKERFILES = [REPO_ROOT / "docker" / "Dockerfile", REPO_ROOT / "docker" / "Dockerfile.cpu"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_uses_the_shared_build_and_a_non_root_user(path: Path):
    text = path.read_text()
    assert "make setup" in text                  # make setup runs docker/build_caffe.sh
    assert "FROM debian:12" in text
    assert "\nUSER 1000" in text
    assert 'CMD ["usecase6"' in text and 'VOLUME ["/data"' in text
    if path.name == "Dockerfile":
        assert "CAFFE_BUILD_FLAGS=--gpu" in text and 'CUDA_ARCH_BIN="70 80 86 90"' in text
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "docker/build_caffe.sh --python" in makefile


def test_build_script_recipe():
    s = (REPO_ROOT / "docker" / "build_caffe.sh").read_text()
    assert "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c" in s
    assert "07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21" in s
    assert "-DCPU_ONLY=ON" in s and "-DUSE_CUDNN=OFF" in s and "-DCUDA_ARCH_PTX" in s
    assert 'patch -d "$srcdir" -p1' in s
    assert "deb.debian.org" not in s          # the mirror is read from the machine's own sources


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed")
    out = subprocess.run([exe, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
