"""--gpu is honoured everywhere: every engine and training check the GPU before Caffe touches it,
and without a usable one the command ends with one clear line, never a silent CPU run or an abort."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, caffe_env, inference
from tests.conftest import RELEASED, gpu_usable, need


@pytest.fixture(scope="module")
def weights():
    d = need(RELEASED / "uc2-epi")
    return d / "1_caffenet_train_w32_iter_600000.caffemodel", d / "DB_train_w32_1.binaryproto"


@pytest.mark.parametrize("mode", sorted(inference.ENGINES))
def test_every_engine_refuses_gpu_without_one(mode, weights, caffe, tmp_path):
    if gpu_usable():
        eng = inference.make_engine(mode, *weights, gpu=True, net_dir=tmp_path)
        assert eng.gpu
        caffe_env.set_mode(False)
        return
    with pytest.raises(caffe_env.GpuUnavailable, match=r"cannot use GPU 0 .*Leave out --gpu"):
        inference.make_engine(mode, *weights, gpu=True, net_dir=tmp_path)
    assert not list(tmp_path.glob("*.prototxt"))  # refused before any net was rendered or made
    caffe_env.set_mode(False)  # this process is alive and usable


@pytest.mark.parametrize("mode", ["fcn", "exact"])
def test_infer_gpu_without_one_is_one_clear_line(mode, weights, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "infer",
            str(tmp_path / "a.png"),
            "--model",
            str(weights[0]),
            "--mean",
            str(weights[1]),
            "--out",
            str(tmp_path / "out"),
            "--mode",
            mode,
            "--gpu",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if gpu_usable():  # a CUDA Caffe with a GPU: it runs there
        assert out.returncode == 0 and (tmp_path / "out" / "a_prob.png").is_file(), out.stderr
        return
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "cannot use GPU 0" in out.stderr and "Leave out --gpu" in out.stderr
    assert not list((tmp_path / "out").glob("*_prob.png"))
