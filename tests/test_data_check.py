"""``python -m pipeline data check``: the report, its errors and warnings, and the make targets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from pipeline import REPO_ROOT, data, datacheck
from pipeline.usecases import datasets
from tests.archive_builders import gray_mask, idc_tree, rgb


def _check(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "data", "check", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )


def test_report_of_a_folder_with_every_kind_of_problem(tmp_path):
    d = tmp_path / "epi"
    rgb(d / "8900_00001.tif")
    gray_mask(d / "masks" / "8900_00001_mask.png")  # fine: {0, 255}
    rgb(d / "8901_00001.tif")
    gray_mask(d / "masks" / "8901_00001_mask.png", size=(12, 10))  # another size: error
    rgb(d / "8902_00001.tif", size=(30, 30))
    gray_mask(d / "masks" / "8902_00001_mask.png", size=(30, 30), values=(0, 0))  # no annotation: warning
    rgb(d / "8903_00001.tif")  # no mask: warning
    gray_mask(d / "masks" / "8904_00001_mask.png")  # no image: warning
    (d / "8905_00001.tif").write_bytes(b"not a tiff")  # unreadable image: error
    gray_mask(d / "masks" / "8905_00001_mask.png")
    ramp = np.tile(np.arange(24, dtype=np.uint8) * 10, (20, 1))
    rgb(d / "8906_00001.tif")
    Image.fromarray(ramp).save(d / "masks" / "8906_00001_mask.png")  # 24 values: warning
    out = _check(d, "--usecase", "epi", "--json", tmp_path / "r.json")
    assert out.returncode == 1, out.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    # 6 images (8900-8903, 8905, 8906), 6 masks (8900-8902, 8904-8906), 5 of them pairs; the
    # unreadable 8905 has no size or mode
    assert (rep["patients"], rep["images"], rep["masks"], rep["pairs"]) == (6, 6, 6, 5)
    assert rep["image_sizes"] == {"24x20": 4, "30x30": 1} and rep["image_modes"] == {"RGB": 5}
    assert rep["mask_depths"] == {"8-bit L": 6}
    assert rep["mask_values"] == {"{0, 255}": 4, "{0}": 1, "24 values from 0 to 230": 1}
    assert rep["images_without_masks"] == ["8903_00001.tif"]
    assert rep["masks_without_images"] == ["masks/8904_00001_mask.png"]
    assert len(rep["errors"]) == 2 and rep["errors"][0].startswith("1 unreadable image(s): 8905_00001.tif")
    assert (
        rep["errors"][1]
        == "1 mask(s) of another size than their image: masks/8901_00001_mask.png is 12x10, its image 24x20"
    )
    assert [w.split(":")[0] for w in rep["warnings"]] == [
        "1 image(s) without a mask (expected at masks/{patient}_{n}_mask.png; skipped by the run)",
        "1 mask(s) without an image",
        "1 mask(s) with a single value (no annotation)",
        "1 mask(s) with more than two values",
    ]
    assert "NOT READY" in out.stdout and "ERROR      1 unreadable image(s)" in out.stdout
    assert "patients   6" in out.stdout and "values {0, 255}: 4" in out.stdout


def test_a_clean_folder_is_ready_and_the_nothing_found_error_is_one_message(tmp_path):
    d = tmp_path / "nuclei"
    for stem in ("10262_500_f00357", "12750_500_f00001"):
        rgb(d / f"{stem}_original.tif")
        gray_mask(d / f"{stem}_mask.png", mode="1")
    out = _check(d, "--usecase", "nuclei")
    assert out.returncode == 0, out.stderr
    assert "masks      2; 1-bit: 2; values {0, 1}: 2" in out.stdout and "result     ready" in out.stdout
    out = _check(tmp_path / "nowhere", "--usecase", "nuclei")
    assert out.returncode == 1 and "neither an archive nor a folder" in out.stderr and "data fetch nuclei" in out.stderr
    out = _check(d, "--usecase", "tubule")
    assert out.returncode == 1 and "no tubule.tgz data found" in out.stderr and "Traceback" not in out.stderr


def test_png_header_reading_matches_pillow(tmp_path):
    for mode, arr in (
        ("RGB", np.zeros((5, 7, 3), np.uint8)),
        ("L", np.zeros((5, 7), np.uint8)),
        ("RGBA", np.zeros((5, 7, 4), np.uint8)),
    ):
        Image.fromarray(arr, mode).save(tmp_path / f"{mode}.png")
        assert datacheck.image_info(tmp_path / f"{mode}.png") == (7, 5, mode)
    Image.fromarray(np.zeros((5, 7), bool)).save(tmp_path / "b.png")
    assert datacheck.image_info(tmp_path / "b.png") == (7, 5, "1")


def test_idc_folder_report_counts_classes(tmp_path):
    idc_tree(tmp_path / "idc")
    m, _ = data.locate(tmp_path / "idc", tmp_path, (datasets.IDC,))
    rep = datacheck.inventory(m, show_progress=False)
    assert rep["patients"] == 2 and rep["images"] == 10 and rep["labels"] == {"0": 6, "1": 4}
    assert rep["masks"] is None and rep["errors"] == rep["warnings"] == []


def test_usecase_targets_check_the_data_first():
    """`make usecase2 DATA=x` runs `data check x --usecase usecase2 --work runs/usecase2` before the run."""
    out = subprocess.run(["make", "-n", "usecase2", "DATA=x.tgz"], cwd=REPO_ROOT, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if "-m pipeline data check" in ln or "-m pipeline usecase2" in ln]
    assert len(lines) == 2 and 'data check "x.tgz" --usecase usecase2 --work "runs/usecase2"' in lines[0]
    out = subprocess.run(
        ["make", "-n", "usecase6", "DATA=x.zip", "VARIANT=resize"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert '--usecase usecase6 --work "runs/usecase6-resize"' in out.stdout
