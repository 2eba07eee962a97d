"""Step 5 inference: exact equals the original reference loop; fcn's measured deviation; outputs; workers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, inference, synth
from pipeline.inference import Options
from tests.conftest import RELEASED, need


@pytest.fixture(scope="module")
def weights():
    d = need(RELEASED / "uc2-epi")
    return d / "1_caffenet_train_w32_iter_600000.caffemodel", d / "DB_train_w32_1.binaryproto"


def he_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Generated H&E-like RGB float image in [0, 1] (tiles of both synthetic classes)."""
    rng = np.random.RandomState(seed)
    tiles = [[synth.he_patch(rng, (i + j) % 2, (24, 24)) for j in range(-(-w // 24))] for i in range(-(-h // 24))]
    full = np.concatenate([np.concatenate(row, axis=1) for row in tiles], axis=0)
    return (full[:h, :w] / 255).astype(np.float32)


@pytest.fixture(scope="module")
def engines(weights, caffe, tmp_path_factory):
    nets = tmp_path_factory.mktemp("nets")
    return {m: inference.make_engine(m, *weights, net_dir=nets) for m in ("reference", "exact", "fcn")}


def test_window_geometry():
    p = inference.pad(np.arange(5 * 6 * 1, dtype=np.float32).reshape(5, 6, 1))
    w = inference.windows(p, np.array([1]), np.array([2]))
    assert w.shape == (1, 32, 32, 1)
    assert np.array_equal(w[0], p[1:33, 2:34])  # image rows -15..16, pixel (1,2) at window index 16
    assert inference.computed_coords(5).tolist() == [1, 2, 3, 4]
    assert inference.computed_coords(10, 3).tolist() == [1, 4, 7]
    assert inference.computed_coords(5, all_pixels=True).tolist() == [0, 1, 2, 3, 4]


def test_exact_equals_reference(engines):
    img = he_image(20, 24)
    ref = engines["reference"].run(img, Options())
    ex = engines["exact"].run(img, Options(batch=100))
    assert np.abs(ex - ref).max() <= 1e-5
    assert (ref[0] == 0).all() and (ref[:, 0] == 0).all()  # never computed
    np.testing.assert_allclose(ref[1:, 1:].sum(axis=2), 1, atol=1e-5)
    assert np.array_equal(ex[1:, 1:].argmax(2), ref[1:, 1:].argmax(2))


def test_exact_equals_reference_with_stride_3(engines):
    img = he_image(26, 22, seed=1)
    ref = engines["reference"].run(img, Options(stride=3))
    ex = engines["exact"].run(img, Options(stride=3))
    assert np.abs(ex - ref).max() <= 1e-5
    computed = np.argwhere(ref.sum(axis=2) > 0)
    assert sorted(set(computed[:, 0])) == list(range(1, 26, 3)) and sorted(set(computed[:, 1])) == list(range(1, 22, 3))


def test_exact_equals_reference_with_resize_half(engines, weights, tmp_path):
    img = (he_image(40, 36, seed=2) * 255).round().astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "slide_01.tif")
    outs = {}
    for mode in ("reference", "exact"):
        res = inference.infer_images(
            [tmp_path / "slide_01.tif"],
            engines[mode],
            tmp_path / mode,
            Options(),
            resize=0.5,
            save_npy=True,
            show_progress=False,
        )
        assert res["computed"] == [str(tmp_path / "slide_01.tif")]
        outs[mode] = np.load(tmp_path / mode / "slide_01_prob.npy")
    assert outs["exact"].shape == (20, 18, 2) and outs["exact"].dtype == np.float32
    assert np.abs(outs["exact"] - outs["reference"]).max() <= 1e-5


def test_fcn_deviation_is_within_the_measured_bound(engines):
    """fcn differs from exact (window zero padding, pooling at window edges, per-channel mean).
    Measured on this generated H&E-like image: mean |dP| 0.065, 92% of pixels the same class."""
    img = he_image(48, 72)
    ex = engines["exact"].run(img, Options())[1:, 1:]
    fc = engines["fcn"].run(img, Options())[1:, 1:]
    d = np.abs(fc[..., 1] - ex[..., 1])
    assert d.mean() <= 0.10 and (fc.argmax(2) == ex.argmax(2)).mean() >= 0.88
    np.testing.assert_allclose(fc.sum(axis=2), 1, atol=1e-5)


def test_fcn_single_pass_at_stride_8_computes_the_same_pixels(engines):
    img = he_image(40, 45)
    ex = engines["exact"].run(img, Options(stride=8))
    fc = engines["fcn"].run(img, Options(stride=8))
    assert np.array_equal(ex.sum(2) > 0, fc.sum(2) > 0)
    assert np.array_equal(
        fc.sum(2) > 0,
        np.isin(np.arange(40), [1, 9, 17, 25, 33])[:, None] & np.isin(np.arange(45), [1, 9, 17, 25, 33, 41])[None, :],
    )
    # the single branch gives, at those pixels, the very numbers of the full shift-and-stitch
    full = engines["fcn"].run(img, Options())
    on = fc.sum(2) > 0
    np.testing.assert_allclose(fc[on], full[on], atol=1e-6)
    assert np.array_equal(fc[~on], np.zeros_like(fc[~on]))


def test_png_encodings():
    prob = np.zeros((2, 3, 2), dtype=np.float32)
    prob[0, 1] = [0.25, 0.75]
    prob[1, 2] = [0.998, 0.002]
    # default, the original's scipy.misc.imsave: min 0 (B and the uncomputed pixels), max 0.998 over all
    # three channels, v -> (v * 255 / 0.998 + 0.5) truncated: 0.25 -> 64.38 -> 64, 0.75 -> 192.13 -> 192,
    # 0.998 -> 255, 0.002 -> 1.01 -> 1; the class map 0/1 -> 0/255
    pm, cm = inference.encode_outputs(prob)
    assert pm[0, 1].tolist() == [64, 192, 0] and pm[1, 2].tolist() == [255, 1, 0] and pm[0, 0].tolist() == [0, 0, 0]
    assert cm.tolist() == [[0, 255, 0], [0, 0, 0]]
    # --png-scale round: round(255 p): 191.25 -> 191, 254.49 -> 254, 0.51 -> 1
    p, c = inference.encode_outputs(prob, minmax_scale=False)
    assert p[0, 1].tolist() == [64, 191, 0] and p[1, 2].tolist() == [254, 1, 0] and p[0, 0].tolist() == [0, 0, 0]
    assert c.tolist() == [[0, 255, 0], [0, 0, 0]]
    # a map whose largest probability is 0.75 is stretched: P 0.6 -> 0.6 * 255 / 0.75 = 204
    low = np.zeros((1, 3, 2))
    low[0, 1], low[0, 2] = [0.25, 0.75], [0.4, 0.6]
    assert inference.encode_outputs(low)[0][0, 2, 1] == 204 and inference.encode_outputs(low, False)[0][0, 2, 1] == 153
    assert inference.output_paths(REPO_ROOT, "8918_00007")["prob"].name == "8918_00007_prob.png"


def test_read_maps_png_and_npy(tmp_path):
    prob = np.zeros((2, 3, 2), dtype=np.float32)
    prob[0, 1] = [0.2, 0.8]
    prob[1, 2] = [0.6, 0.4]
    inference.write_outputs(inference.output_paths(tmp_path, "a"), prob, save_npy=True)
    p1, cls = inference.read_maps(tmp_path, "a")
    # png: G / 255 of the min-max PNG (max 0.8): 0.8 -> 255 -> 1.0; 0.4 -> 127.5 + .5 -> 128 -> 128/255
    assert p1[0, 1] == 1.0 and p1[1, 2] == 128 / 255 and cls.tolist() == [[False, True, False], [False, False, False]]
    p1n, clsn = inference.read_maps(tmp_path, "a", "npy")
    assert p1n[1, 2] == pytest.approx(0.4) and np.array_equal(clsn, cls)
    with pytest.raises(FileNotFoundError, match="b_prob.png"):
        inference.read_maps(tmp_path, "b")


def test_an_output_folder_keeps_one_png_scale(engines, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray((he_image(12, 12) * 255).astype(np.uint8)).save(src / "a.png")
    out = tmp_path / "out"
    inference.infer_images([src / "a.png"], engines["exact"], out, Options(), show_progress=False)
    assert json.loads((out / ".outputs.json").read_text())["png_scale"] == "minmax"
    with pytest.raises(ValueError, match="made with --png-scale minmax; this run asks --png-scale round"):
        inference.infer_images(
            [src / "a.png"], engines["exact"], out, Options(), minmax_scale=False, show_progress=False
        )
    (out / ".outputs.json").unlink()  # a folder from before the record: refused, not reused
    with pytest.raises(ValueError, match="_prob.png files without .outputs.json"):
        inference.infer_images([src / "a.png"], engines["exact"], out, Options(), show_progress=False)


def test_inputs_parents_and_masks(tmp_path):
    for n in ("8918_00007.tif", "8918_00007_mask.png", "9000_00001.tif", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    assert [p.name for p in inference.expand_inputs([str(tmp_path)])] == ["8918_00007.tif", "9000_00001.tif"]
    parents = tmp_path / "test_w32_parent_1.txt"
    parents.write_text("9000\n")
    assert [p.name for p in inference.expand_inputs([str(tmp_path / "*.tif")], parents=parents)] == ["9000_00001.tif"]
    # use case 4: each image is its own patient; "im1" selects im1.tif, not im10.tif
    for n in ("im1.tif", "im10.tif"):
        (tmp_path / n).write_bytes(b"x")
    parents.write_text("im1\n")
    assert [p.name for p in inference.expand_inputs([str(tmp_path / "im*.tif")], parents=parents)] == ["im1.tif"]
    with pytest.raises(FileNotFoundError, match="nope.tif"):
        inference.expand_inputs([str(tmp_path / "nope.tif")])


WORKER = """
import json, sys
from pathlib import Path
from pipeline import inference
eng = inference.make_engine("exact", sys.argv[1], sys.argv[2], net_dir=Path(sys.argv[4]))
imgs = sorted(Path(sys.argv[3]).glob("*.png"))
res = inference.infer_images(imgs, eng, Path(sys.argv[4]), inference.Options(), show_progress=False)
print(json.dumps(res["computed"]))
"""


def test_two_workers_never_compute_the_same_image(weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        Image.fromarray((he_image(12, 12, seed=i) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    cmd = [sys.executable, "-c", WORKER, str(weights[0]), str(weights[1]), str(src), str(tmp_path / "out")]
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    done = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert not set(done[0]) & set(done[1])
    assert len(done[0]) + len(done[1]) == 8
    assert len(list((tmp_path / "out").glob("*_prob.png"))) == 8 and not list((tmp_path / "out").glob(".*lock*"))
    # a third run finds everything done
    again = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == []
