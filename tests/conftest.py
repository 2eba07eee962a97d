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
RELEASED = SHARED / "released"
REALDATA = SHARED / "realdata" / "idc"


def need(path: Path) -> Path:
    """Skip the test when a ../shared resource is absent (it is present in CI)."""
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


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
