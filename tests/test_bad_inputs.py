"""Bad inputs a user meets, through the real command line: each run ends with a message that names
the file and the problem, never a traceback (issue 12).

The image use cases skip a bad image and report it (the original MATLAB crashed on the first one, or
went on with an empty mask); the model commands stop with one error line and exit status 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT

RUN_TIMEOUT = 600


def _cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def bad_epi_cohort(tmp_path_factory) -> Path:
    """Five generated epithelium patients, then one bad file each: an image without its mask, a mask
    of another size, an all-zero mask, an image cut short (a broken copy)."""
    from pipeline.usecases import epi

    data = tmp_path_factory.mktemp("bad") / "data"
    epi.make_cohort(data, n_patients=5, size=64, seed=2)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "7777_00001.tif")
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(data / "8004_00001_mask.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "8003_00001_mask.png")
    whole = (data / "8002_00001.tif").read_bytes()
    (data / "8002_00001.tif").write_bytes(whole[:200])
    return data


def test_bad_images_and_masks_are_named_and_skipped(bad_epi_cohort, tmp_path):
    out = _cli(
        "usecase2",
        "--data",
        str(bad_epi_cohort),
        "--work",
        str(tmp_path / "w"),
        "--stages",
        "patches,folds",
        "--max-positive",
        "5",
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    data = bad_epi_cohort
    assert "7777_00001.tif: image without a mask (no 7777_*_mask.png); skipped" in text
    assert f"{data / '8004_00001_mask.png'}: mask is (50, 50), image 8004_00001.tif is (64, 64)" in text
    assert f"{data / '8003_00001.tif'}: empty mask (no positive pixels)" in text
    assert f"{data / '8002_00001.tif'}: cannot read image (OSError: image file is truncated" in text
    # the good patients were cut; the bad ones are listed as problems of the run, not patches
    subs = {p.name.split("_")[0] for p in (tmp_path / "w" / "subs").glob("*.png")}
    assert {"8001", "8005"} <= subs and not subs & {"7777", "8002", "8004"}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, caffe):
    """A real two-class caffemodel (the template's deploy net, Caffe's initial weights), a copy cut
    short as a broken download leaves it, a 3x32x32 mean and one of the wrong shape."""
    from pipeline import templates

    root = tmp_path_factory.mktemp("model")
    deploy = templates.deploy_in(root, num_output=2)
    model = root / "ok.caffemodel"
    caffe.Net(str(deploy), caffe.TEST).save(str(model))
    whole = model.read_bytes()
    cut = root / "cut.caffemodel"
    cut.write_bytes(whole[: len(whole) // 3])
    means = {}
    for name, shape in (("ok", (1, 3, 32, 32)), ("wrong", (1, 3, 10, 10))):
        means[name] = root / f"{name}_mean.binaryproto"
        means[name].write_bytes(caffe.io.array_to_blobproto(np.full(shape, 128, np.float32)).SerializeToString())
    patches = root / "patches"
    patches.mkdir()
    rng = np.random.RandomState(0)
    for i in range(4):
        Image.fromarray(rng.randint(0, 256, (32, 32, 3)).astype(np.uint8)).save(patches / f"9001_{i}.png")
    lst = root / "list.txt"
    lst.write_text("".join(f"9001_{i}.png {i % 2}\n" for i in range(4)))
    return {
        "model": model,
        "cut": cut,
        "mean": means["ok"],
        "wrong_mean": means["wrong"],
        "patches": patches,
        "list": lst,
        "cut_size": len(whole) // 3,
    }


def _evaluate(f: dict, tmp_path: Path, model: Path, mean: Path, lst: Path) -> subprocess.CompletedProcess:
    return _cli(
        "evaluate",
        "--model",
        str(model),
        "--mean",
        str(mean),
        "--list",
        str(lst),
        "--patch-dir",
        str(f["patches"]),
        "--json",
        str(tmp_path / "eval.json"),
    )


def test_evaluate_a_list_with_a_real_model(model_files, tmp_path):
    """`evaluate --list`: every listed patch classified, the counts by class as the list says."""
    import json

    out = _evaluate(model_files, tmp_path, model_files["model"], model_files["mean"], model_files["list"])
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path / "eval.json").read_text())
    o = res["overall"]
    assert o["n"] == 4
    assert o["tp"] + o["fn"] == 2 and o["tn"] + o["fp"] == 2  # two of each label in the list
    assert (tmp_path / "eval.csv").is_file() and (tmp_path / "eval.md").is_file()


def test_a_truncated_caffemodel_is_named_by_evaluate_and_infer(model_files, tmp_path):
    f = model_files
    out = _evaluate(f, tmp_path, f["cut"], f["mean"], f["list"])
    want = f"{f['cut']}: not a Caffe model: truncated or another format ({f['cut_size']} bytes;"
    assert out.returncode == 1 and want in out.stderr, out.stderr[-2000:]
    img = tmp_path / "img.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(img)
    out = _cli(
        "infer",
        "--model",
        str(f["cut"]),
        "--mean",
        str(f["mean"]),
        "--out",
        str(tmp_path / "o"),
        "--usecase",
        "epi",
        str(img),
    )
    assert out.returncode == 1 and want in out.stderr, out.stderr[-2000:]


def test_a_mean_of_the_wrong_shape_is_named(model_files, tmp_path):
    f = model_files
    out = _evaluate(f, tmp_path, f["model"], f["wrong_mean"], f["list"])
    assert out.returncode == 1, out.stderr[-2000:]
    assert f"{f['wrong_mean']}: mean has shape (3, 10, 10), expected (3, 32, 32)" in out.stderr


def test_a_list_naming_a_missing_file_is_named(model_files, tmp_path):
    f = model_files
    lst = tmp_path / "list.txt"
    lst.write_text("9001_0.png 0\n9001_9.png 1\n")
    out = _evaluate(f, tmp_path, f["model"], f["mean"], lst)
    assert out.returncode == 1
    assert f"{lst}: entry 2 names 9001_9.png, which is not in {f['patches']}" in out.stderr
