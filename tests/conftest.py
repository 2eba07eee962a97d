"""Shared fixtures. Tests run the real Caffe tools on data they generate, and on ../shared."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared"
#: The released weights and means: ../shared/released, else what `make fetch-released` downloads.
RELEASED = SHARED / "released" if (SHARED / "released").is_dir() else REPO_ROOT / "data" / "released"
REALDATA = SHARED / "realdata" / "idc"

#: Under CI a missing asset or tool fails the test instead of skipping it.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: How to provide each asset a test may need, for the messages and the end-of-run line.
HOW = {
    RELEASED: "run `make fetch-released` (sha256-checked download into data/released) or mount ../shared",
    REALDATA: "mount ../shared/realdata/idc (real IDC patches of three patients)",
}

#: (test id, guarantee not checked, how) of each test skipped for a missing asset in this run.
UNCHECKED: list[tuple[str, str, str]] = []


def need(path: Path, what: str = "") -> Path:
    """``path`` if present; else skip the test (fail under CI=true), saying what was not checked
    and how to provide the asset. ``what`` names the guarantee the test checks."""
    if path.exists():
        return path
    how = next((h for root, h in HOW.items() if path == root or root in path.parents), "provide it")
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    what = what or test.rsplit("::", 1)[-1].replace("test_", "", 1).replace("_", " ")
    if IN_CI:
        pytest.fail(f"{path} not present (CI=true: a missing asset is a failure); {how}", pytrace=False)
    UNCHECKED.append((test, what, how))
    pytest.skip(f"{path} not present: NOT CHECKED: {what}; {how}")


def pytest_terminal_summary(terminalreporter) -> None:
    """One line at the end of the run naming the guarantees skipped tests did not check."""
    if not UNCHECKED:
        return
    hows = sorted({h for _, _, h in UNCHECKED})
    terminalreporter.write_line(
        f"NOT CHECKED ({len(UNCHECKED)} test(s) skipped for missing assets): "
        + "; ".join(w for _, w, _ in UNCHECKED)
        + ". To check them: "
        + "; ".join(hows)
        + ".",
        yellow=True,
        bold=True,
    )


def gpu_usable() -> bool:
    """A CUDA build of Caffe on a machine with an NVIDIA device (where --gpu is expected to work)."""
    from pipeline import caffe_env

    return any((caffe_env.caffe_root() / "lib").glob("libcublas.so*")) and Path("/dev/nvidia0").exists()


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.INFO)


@pytest.fixture(scope="session")
def caffe():
    from pipeline.caffe_env import import_caffe

    return import_caffe()


def write_pngs(folder: Path, n: int, size: int = 32, seed: int = 0) -> list[tuple[str, np.ndarray, int]]:
    """n random RGB PNGs named img_<i>.png; returns (name, pixels RGB uint8, label)."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        arr = rng.randint(0, 256, (size, size, 3)).astype(np.uint8)
        name = f"img_{i:03d}.png"
        Image.fromarray(arr).save(folder / name)
        out.append((name, arr, i % 2))
    return out


def tiny_usecase_command(command: str, data: Path, work: Path, max_positive: int, *extra: str) -> list[str]:
    """``python -m pipeline <command>`` on a generated cohort: 10 iterations a fold, fcn outputs, then ``extra``."""
    import sys

    return [
        sys.executable, "-m", "pipeline", command, "--data", str(data), "--work", str(work), "--iter", "10",
        "--test-interval", "10", "--snapshot", "10", "--display", "5", "--max-positive", str(max_positive),
        "--infer-mode", "fcn", *extra,
    ]  # fmt: skip


def run_tiny_usecase(command: str, data: Path, work: Path, max_positive: int, *extra: str):
    """:func:`tiny_usecase_command` run with the real tools. Returns the CompletedProcess (stdout and
    stderr as text); fails with stderr's tail."""
    import subprocess

    out = subprocess.run(
        tiny_usecase_command(command, data, work, max_positive, *extra), cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """A generated IDC-like cohort (6 patients) with its split files."""
    from pipeline.usecases.idc.dataset import make_cohort

    root = tmp_path_factory.mktemp("cohort")
    split = make_cohort(root, n_patients=6, per_class=(24, 12), seed=3, split=(3, 1, 2))
    return root, split


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A private one-node SLURM cluster on 127.0.0.1 (tests/slurm_cluster.py): munged, slurmctld and
    slurmd started for these tests and stopped, by pid, at the end. Without the Debian packages
    (`make setup-slurm`) the tests using it are skipped with the reason, and fail under CI."""
    from tests import slurm_cluster

    missing = slurm_cluster.missing_tools()
    if missing:
        why = f"SLURM/MUNGE not installed ({', '.join(missing)} missing): make setup-slurm installs them"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    cluster = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    yield cluster
    pids = [p.pid for p in cluster.procs.values()]
    cluster.stop()
    alive = [pid for pid in pids if slurm_cluster.pid_alive(pid)]
    assert not alive, f"test cluster daemons still running: {alive}"


@pytest.fixture(scope="session")
def lymphocyte_run(tmp_path_factory):
    """``python -m pipeline usecase4`` on a tiny generated cohort (5 images, 10 iterations a fold,
    fcn outputs): (data folder, work folder, completed process). Shared by the use-case and report tests."""
    import subprocess

    from pipeline import REPO_ROOT
    from pipeline.usecases import lymphocyte

    root = tmp_path_factory.mktemp("lymphocyte")
    data, work = root / "data", root / "w"
    lymphocyte.make_cohort(data, n_images=5, size=40, seed=4)
    cmd = tiny_usecase_command("usecase4", data, work, 15)
    return data, work, subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
