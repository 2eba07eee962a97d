"""`python -m pipeline doctor` names a missing Caffe tool and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline import REPO_ROOT, caffe_env


def test_doctor_names_a_missing_tool_and_fails(tmp_path):
    root = caffe_env.caffe_root()
    fake = tmp_path / "caffe"
    (fake / "bin").mkdir(parents=True)
    for part in ("lib", "python"):
        (fake / part).symlink_to(root / part)
    for tool in ("caffe", "compute_image_mean"):  # convert_imageset left out
        (fake / "bin" / tool).symlink_to(root / "bin" / tool)
    path = os.pathsep.join(
        p
        for p in os.environ["PATH"].split(os.pathsep)
        if not (p and os.path.exists(os.path.join(p, "convert_imageset")))
    )
    env = dict(os.environ, CAFFE_ROOT=str(fake), PATH=path)
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "doctor"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 1, out.stdout
    assert "MISSING convert_imageset" in out.stdout
    assert out.stdout.rstrip().endswith("missing: convert_imageset -- run `make setup`")
    assert "Traceback" not in out.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline", "doctor", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("doctor: Caffe at "), ok.stdout
