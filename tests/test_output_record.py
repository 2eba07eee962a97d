"""Step-5 output folders record how their maps were made (.outputs.json); scorers read the record.

Issue 23 item 4: with ``--stride`` above 1 step 5 leaves the uncomputed pixels 0. The nuclei and
lymphocyte scorers were never told the stride and scored those zeros as probabilities; they now
read the folder's record and score the map filled from its computed pixels (what --all-pixels
writes), and epithelium's scorer takes the computed pixels from the record, not from an argument.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import inference
from pipeline.inference import Options, OutputRecord
from pipeline.usecases import epi, nuclei
from pipeline.usecases import lymphocyte as ly
from tests.conftest import RELEASED, need


def record(stride: int = 1, all_pixels: bool = False, **kw) -> OutputRecord:
    """A record as step 5 writes it (hashes made up: the scorers read stride and all-pixels only)."""
    return OutputRecord(
        png_scale="minmax",
        engine="exact",
        stride=stride,
        all_pixels=all_pixels,
        resize=kw.pop("resize", 1.0),
        model_sha256="0" * 64,
        mean_sha256="1" * 64,
        dropout=False,
        classes=2,
        **kw,
    )


def strided(prob: np.ndarray, stride: int) -> np.ndarray:
    """``prob`` with only the pixels step 5 computes at ``stride`` kept (rows, cols 1, 1+S, ...), others 0."""
    out = np.zeros_like(prob)
    rr, cc = inference.computed_coords(prob.shape[0], stride), inference.computed_coords(prob.shape[1], stride)
    out[np.ix_(rr, cc)] = prob[np.ix_(rr, cc)]
    return out


def write_maps(out_dir: Path, stem: str, prob: np.ndarray, rec: OutputRecord) -> None:
    inference.write_outputs(inference.output_paths(out_dir, stem), prob, save_npy=True)
    inference.write_record(out_dir, rec)


def test_record_round_trip_and_computed_pixels(tmp_path):
    rec = record(stride=3, usecase="epi")
    inference.write_record(tmp_path, rec)
    assert inference.read_record(tmp_path) == rec
    rows, cols = rec.computed(10, 5)
    assert rows.tolist() == [1, 4, 7] and cols.tolist() == [1, 4]
    rows, cols = record(stride=3, all_pixels=True).computed(4, 2)  # --all-pixels filled every pixel
    assert rows.tolist() == [0, 1, 2, 3] and cols.tolist() == [0, 1]
    # filled: each pixel takes the computed pixel at or before it; the first row and column stay 0
    m = strided(np.arange(1, 37, dtype=float).reshape(6, 6), 2)
    f = record(stride=2).filled(m)
    assert f[1].tolist() == [0, 8, 8, 10, 10, 12] and f[2].tolist() == f[1].tolist() and f[0].tolist() == [0] * 6
    assert f[:, 0].tolist() == [0] * 6
    assert record(stride=1).filled(m) is m
    with pytest.raises(FileNotFoundError, match="no .outputs.json"):
        inference.read_record(tmp_path / "nothing")
    (tmp_path / ".outputs.json").write_text('{"png_scale": "minmax"}')  # a record from before: stride unknown
    with pytest.raises(ValueError, match="recorded before their stride was"):
        inference.read_record(tmp_path).computed(3, 3)


def test_nuclei_scores_a_strided_map_filled_from_its_computed_pixels(tmp_path):
    # one annotated nucleus: rows 3..8, cols 3..8 (36 px) of a 12x12 image
    mask = np.zeros((12, 12), np.uint8)
    mask[3:9, 3:9] = 255
    Image.fromarray(mask).save(tmp_path / "12345_500_f1_mask.png")
    img = tmp_path / "12345_500_f1_original.tif"
    p1 = np.where(mask > 0, 0.9, 0.1)
    full = np.stack([1 - p1, p1], axis=2)
    # at stride 2 step 5 computes rows and columns 1, 3, 5, ...: inside the nucleus rows/cols 3, 5, 7, a
    # 3x3 grid of isolated pixels. Scored as they are (the bug), the zeros between them are background:
    # 9 one-pixel components, tp 9, fp 0, fn 27, F = 18 / 45 = 0.4, not detected (9 <= 36 / 2).
    # Filled from the computed pixels (rows 3, 4 <- 3; 5, 6 <- 5; 7, 8 <- 7) the segmentation is the
    # nucleus exactly: F 1, detected.
    out = tmp_path / "out"
    write_maps(out, img.stem, strided(full, 2), record(stride=2))
    s = nuclei.score_fold(out, 1, [img], 0.5)
    assert s["images"][0]["f_score"] == 1.0 and s["images"][0]["detection_rate"] == 1.0
    # the same map written by --all-pixels (filled by step 5 itself) scores the same
    allp = tmp_path / "allp"
    write_maps(allp, img.stem, record(stride=2).filled(strided(full, 2)), record(stride=2, all_pixels=True))
    assert nuclei.score_fold(allp, 1, [img], 0.5)["images"] == s["images"]


def _cone(size: int = 80, centre=(41, 21)) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    p1 = 0.25 + 0.5 * np.clip(1 - np.hypot(yy - centre[0], xx - centre[1]) / 30, 0, None)
    prob = np.stack([1 - p1, p1], axis=2)
    prob[0, :] = prob[:, 0] = 0
    return prob


def test_lymphocyte_peaks_of_a_strided_map_come_from_its_computed_pixels(tmp_path):
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "im1.tif")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[10, 5, 3] = 255  # the true centre: (41.5 / 4 - 0.5, 21.5 / 4 - 0.5) = (9.875, 4.875) of the cone's tip
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "1m.tif")
    out = tmp_path / "out"
    write_maps(out, "im1", strided(_cone(), 2), record(stride=2, resize=4.0))
    # the cone's tip (41, 21) is a computed pixel (odd row and column). Unfilled (the bug), three of
    # every four pixels under the radius-6 disk are 0: the disk average at the tip drops from 0.911
    # (the min-max PNG's 0.333 + 0.667 * 0.867, see test_lymphocyte) to about a quarter of it, below
    # the threshold 0.7706: nothing found, fn 1. Filled, the map is the cone in 2x2 steps: one peak,
    # matched to the true centre.
    s = ly.score_fold(out, 1, [tmp_path / "im1.tif"], 4.0, 1.0)
    assert (s["detection"]["tp"], s["detection"]["fp"], s["detection"]["fn"]) == (1, 0, 0)
    peaks = ly.map_peaks(out, tmp_path / "im1.tif")
    allp = tmp_path / "allp"
    write_maps(allp, "im1", record(stride=2).filled(strided(_cone(), 2)), record(stride=2, all_pixels=True))
    assert np.array_equal(ly.map_peaks(allp, tmp_path / "im1.tif"), peaks)


def test_epithelium_takes_the_computed_pixels_from_the_record(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :4] = 255
    Image.fromarray(mask).save(tmp_path / "9001_00001_mask.png")
    img = tmp_path / "9001_00001.tif"
    p1 = np.full((8, 8), 0.2)
    p1[:, :3] = 0.7  # class 1 on columns 0..2
    prob = np.stack([1 - p1, p1], axis=2)
    out = tmp_path / "out"
    write_maps(out, img.stem, strided(prob, 3), record(stride=3))
    # computed rows and columns 1, 4, 7 (9 pixels; the zeros between them are not scored): the truth
    # (columns 0..3) holds computed column 1, predicted epithelium there: tp 3; columns 4 and 7 are
    # stroma, predicted stroma: tn 6
    c = epi.score_fold(out, 1, [img], [], 1.0)["class_map"]
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (3, 0, 0, 6)


def test_step5_writes_the_full_record(tmp_path, caffe):
    d = need(RELEASED / "uc2-epi")
    model, mean = d / "1_caffenet_train_w32_iter_600000.caffemodel", d / "DB_train_w32_1.binaryproto"
    Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(tmp_path / "a.png")
    eng = inference.make_engine("exact", model, mean, net_dir=tmp_path / "nets")
    out = tmp_path / "out"
    inference.infer_images(
        [tmp_path / "a.png"], eng, out, Options(stride=2), resize=0.5, show_progress=False, usecase="epi"
    )
    rec = json.loads((out / ".outputs.json").read_text())
    assert rec == {
        "png_scale": "minmax",
        "engine": "exact",
        "stride": 2,
        "all_pixels": False,
        "resize": 0.5,
        "model_sha256": inference.outputs.sha256_file(model),
        "mean_sha256": inference.outputs.sha256_file(mean),
        "dropout": False,
        "classes": 2,
        "model": str(model.resolve()),
        "mean": str(mean.resolve()),
        "usecase": "epi",
    }
