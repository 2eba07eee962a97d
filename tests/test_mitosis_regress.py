"""``regress --usecase mitosis``: the five released second-stage models of use case 5 on generated
frames, through the real command line (pycaffe, fcn engine); counts pinned."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline import REPO_ROOT
from tests.conftest import RELEASED, need


def test_released_second_stage_models_on_generated_frames(tmp_path):
    rel = need(RELEASED / "uc5-mitosis")
    from pipeline.usecases.mitosis.cohort import make_cohort

    data = tmp_path / "data"
    make_cohort(data, patients=("01", "02"), frames=1, size=128, seed=3)  # 3 frames, 3 mitoses
    cmd = [
        sys.executable, "-m", "pipeline", "regress", "--usecase", "mitosis", "--released", str(RELEASED),
        "--images", str(data), "--out", str(tmp_path / "out"),
        "--ours", str(rel / "1_caffenet_train_w32_2nd_iter_600000.caffemodel"),
        "--ours-mean", str(rel / "DB_train_w32_1_2nd.binaryproto"),
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads((tmp_path / "out" / "regress.json").read_text())["rows"]
    got = [(r["model"], r["frames"], r["detections"], r["tp"], r["fp"], r["fn"]) for r in rows]
    # measured with the released weights (sha256 in ../shared/released/README.md) on this generated
    # cohort, 2026-12-07: the models were trained on real tissue, so the counts only pin behaviour
    assert got == [
        ("released fold 1", 3, 12, 2, 10, 1),
        ("released fold 2", 3, 36, 3, 33, 0),
        ("released fold 3", 3, 43, 3, 40, 0),
        ("released fold 4", 3, 4, 2, 2, 1),
        ("released fold 5", 3, 4, 1, 3, 2),
        ("ours 1_caffenet_train_w32_2nd_iter_600000.caffemodel", 3, 12, 2, 10, 1),  # the same model: the same counts
    ]
    assert (tmp_path / "out" / "report" / "index.html").is_file()
