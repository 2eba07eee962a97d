"""U-Net use case, the parts without torch: tiling geometry, splits, registry import, Makefile."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline import REPO_ROOT, folds
from pipeline.usecases.unet import split as splits
from pipeline.usecases.unet.tiling import Untileable, db_remainder, db_tiles, output_grid, output_tiles, stitch


def test_registry_and_help_do_not_import_torch():
    code = (
        "import sys; from pipeline.cli import build_parser; build_parser(); "
        "import pipeline.usecases as u; assert 'unet' in u.REGISTRY; "
        "bad = [m for m in ('torch', 'tables', 'albumentations', 'cv2') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_db_tiles_as_make_hdf5():
    # a 1000x1000 image, reflect pad 250 -> 1500, tiles of 500 every 250: 5 x 5 = 25, nothing lost (Q9)
    assert db_remainder(1000) == 0 and db_remainder(1010) == 10
    img = np.arange(6 * 8).reshape(6, 8).astype(np.uint8)
    t = db_tiles(img, patch=4, stride=2, mirror_pad=2)  # padded 10 x 12: rows 0,2,4,6 ; cols 0,2,4,6,8
    assert t.shape == (4 * 5, 4, 4)
    padded = np.pad(img, 2, mode="reflect")
    assert padded[0, 0] == img[2, 2]  # reflect: the edge pixel is not repeated
    assert (t[0] == padded[0:4, 0:4]).all() and (t[1] == padded[0:4, 2:6]).all()  # row-major
    assert (t[5] == padded[2:6, 0:4]).all() and (t[-1] == padded[6:10, 8:12]).all()
    with pytest.raises(Untileable, match="mirror padding"):
        db_tiles(np.zeros((2, 9), np.uint8), patch=4, stride=2, mirror_pad=2)


def test_output_grid_numbers_of_the_original():
    g = output_grid(1000, 1000)
    # 1000 + 2*64 = 1128 -> zero-padded to 1280 (5 x 256); tiles every 128: (1280-256)/128+1 = 9
    assert (g.stride, g.pad, g.pad_bottom, g.rows, g.cols) == (128, 64, 152, 9, 9)
    with pytest.raises(Untileable):
        output_grid(100, 100, patch=250)
    with pytest.raises(Untileable, match="reflect padding"):
        output_grid(64, 300)


@pytest.mark.parametrize("shape,patch", [((21, 30), 16), ((300, 200), 256), ((128, 129), 256)])
def test_each_output_pixel_from_the_tile_whose_centre_holds_it(shape, patch):
    rng = np.random.RandomState(0)
    img = rng.randint(0, 255, shape + (3,)).astype(np.float32)
    g = output_grid(*shape, patch=patch)
    tiles = output_tiles(img, g)
    # an identity "network": its outputs are its input tiles, plus a channel holding the tile's index
    idx = np.broadcast_to(np.arange(len(tiles), dtype=np.float32)[:, None, None, None], tiles.shape[:3] + (1,))
    out = stitch(np.concatenate([tiles, idx], axis=3), g)
    assert out.shape == shape + (4,)
    assert (out[..., :3] == img).all()  # every pixel lands back where it came from
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    assert (out[..., 3] == (r // g.stride) * g.cols + c // g.stride).all()  # from tile (r // 128, c // 128)
    # and inside that tile it sits in the central block [pad, pad + stride)
    s, p = g.stride, g.pad
    tile_rows = r - (r // s) * s + p
    assert tile_rows.min() == p and tile_rows.max() <= p + s - 1


def test_original_split_is_seeded_90_10_by_patient():
    patients = [str(8000 + i) for i in range(42)]
    a = splits.original_split(patients, seed=1)
    assert (len(a.train), len(a.val)) == (37, 5)  # ShuffleSplit: n_test = ceil(0.1 * 42) = 5
    assert a == splits.original_split(list(reversed(patients)), seed=1)  # sorted first: order-free
    assert a != splits.original_split(patients, seed=2)
    assert not set(a.train) & set(a.val) and a.test == a.val


def test_uc2_fold_split_uses_use_case_2_folds():
    patients = [str(8000 + i) for i in range(13)]
    assignment = folds.assign_folds(patients, 5, 3)  # what use case 2's crossval assigns (seed 3)
    for k in range(1, 6):
        s = splits.uc2_fold_split(patients, k, seed=3)
        assert set(s.test) == {p for p in patients if assignment[p] == k}
        vk = k % 5 + 1
        assert set(s.train) == {p for p in patients if assignment[p] not in (k, vk)}  # validation held out
        assert set(s.val) == {p for p in patients if assignment[p] == vk} and not set(s.val) & set(s.train)
        published = splits.uc2_fold_split(patients, k, seed=3, val_in_training=True)  # use case 2's protocol
        assert set(published.train) == {p for p in patients if assignment[p] != k} and set(s.val) <= set(
            published.train
        )
        assert published.val == s.val and published.test == s.test and "validation in training" in published.mode
    assert splits.parse("uc2-fold 3") == ("uc2-fold", 3) and splits.parse("uc2-fold=2") == ("uc2-fold", 2)
    with pytest.raises(ValueError, match="uc2-fold K"):
        splits.parse("fold 3")
    with pytest.raises(ValueError):
        splits.uc2_fold_split(patients, 6, 1)


def test_make_targets_install_the_unet_for_tests():
    out = subprocess.run(["make", "-n", "test"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert "requirements-unet.txt" in out or (REPO_ROOT / ".venv" / ".requirements-unet.stamp").is_file()
    req = (REPO_ROOT / "requirements-unet.txt").read_text()
    assert "torch==2.13.0" in req and "torchvision" not in req
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # not `make test`'s

    def dry(*args: str) -> str:
        out = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env).stdout
        return out.replace("\\\n", " ").strip().splitlines()[-1]  # the last command, continuation lines joined

    assert " --force" in dry("unet", "DATA=d", "FORCE=1") and " --force" in dry("demo-unet-vs-caffe", "FORCE=1")
    assert "--force" not in dry("unet", "DATA=d") and "--fold 2" in dry("unet-vs-caffe", "DATA=d", "FOLD=2")


def test_output_inputs_as_make_output_unet_cmd(tmp_path):
    from pipeline.usecases.unet.output import input_files

    for n in ("b.tif", "a.tif", "c.png"):
        (tmp_path / n).write_bytes(b"x")
    assert input_files([str(tmp_path / "*.tif")]) == [tmp_path / "a.tif", tmp_path / "b.tif"]  # one wildcard
    assert input_files([str(tmp_path / "c.png"), str(tmp_path / "a.tif")]) == [tmp_path / "c.png", tmp_path / "a.tif"]
    tsv = tmp_path / "list.tsv"
    tsv.write_text("#name\tlabel\nb.tif\t1\nc.png\t0\n")  # first column, '#' lines skipped
    assert input_files([str(tsv)], basepath=str(tmp_path)) == [tmp_path / "b.tif", tmp_path / "c.png"]
    with pytest.raises(FileNotFoundError, match="nothere.tif"):
        input_files([str(tmp_path / "nothere.tif"), str(tmp_path / "a.tif")])
    with pytest.raises(ValueError, match="no images selected"):
        input_files([])


def test_enlarged_demo_cohort(tmp_path):
    from PIL import Image

    from pipeline.usecases.unet.cohort import enlarged_cohort

    imgs = enlarged_cohort(tmp_path / "c", 2, 64, seed=1)
    assert [i.name for i in imgs] == ["8001_00001.tif", "8002_00001.tif"] and not (tmp_path / "c.small").exists()
    mask = np.asarray(Image.open(tmp_path / "c" / "8001_00001_mask.png"))
    assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 255}  # nearest: still binary
    assert np.asarray(Image.open(imgs[0])).shape == (64, 64, 3)


def test_published_epi_layout_is_read_through_use_case_2s_listing(tmp_path):
    from pipeline.usecases import epi
    from pipeline.usecases.unet import UNetEpistroma

    src = tmp_path / "epi"
    epi.make_cohort(src, n_patients=2, size=32, seed=1)
    (src / "masks").mkdir()
    for m in src.glob("*_mask.png"):  # as epi.tgz was published: masks in masks/
        m.rename(src / "masks" / m.name)
    folder = UNetEpistroma().prepare_data(src, tmp_path / "cache")
    by_patient = epi.images_by_patient(folder)
    assert list(by_patient) == ["8001", "8002"] and all(epi.mask_path(i).is_file() for i in by_patient["8001"])


def test_sign_test_exact_values():
    from pipeline.usecases.unet.paired import sign_test

    assert sign_test(5, 0) == 2 / 32  # both tails of Binomial(5, 1/2): 2 * 1/32
    assert sign_test(0, 5) == 2 / 32
    assert sign_test(4, 1) == 2 * (1 + 5) / 32  # P(X <= 1) = (C(5,0) + C(5,1)) / 32
    assert sign_test(2, 2) == 1.0 and sign_test(0, 0) == 1.0  # capped at 1; no pairs
    assert sign_test(10, 0) == 2 / 1024


def test_paired_comparison_over_the_same_images():
    from pipeline.usecases.unet.paired import bootstrap_ci, compare

    a = {"x.tif": 0.80, "y.tif": 0.70, "z.tif": 0.60, "w.tif": None, "v.tif": 0.5}
    b = {"x.tif": 0.90, "y.tif": 0.75, "z.tif": 0.60, "w.tif": 0.9, "u.tif": 0.1}
    r = compare(a, b, seed=1)
    assert r["images"] == ["x.tif", "y.tif", "z.tif"] and r["left_out"] == ["u.tif", "v.tif", "w.tif"]
    assert (r["wins"], r["losses"], r["ties"]) == (2, 0, 1)
    assert r["mean_diff"] == pytest.approx((0.10 + 0.05 + 0.0) / 3)
    assert r["mean_a"] == pytest.approx(0.7) and r["mean_b"] == pytest.approx(0.75)
    assert r["sign_p"] == 0.5  # 2 wins of 2 non-ties: 2 * 1/4
    lo, hi = r["ci95"]
    assert 0.0 <= lo <= r["mean_diff"] <= hi <= 0.10  # resampled means lie within the diffs' range
    assert r == compare(a, b, seed=1)  # seeded: one interval
    assert bootstrap_ci([0.03, 0.03, 0.03]) == pytest.approx((0.03, 0.03))  # no spread, no width
    assert bootstrap_ci([0.2]) == pytest.approx((0.2, 0.2)) and bootstrap_ci([]) is None
    empty = compare({"a": None}, {"a": 0.5})
    assert empty["n"] == 0 and empty["mean_diff"] is None and empty["ci95"] is None and empty["sign_p"] == 1.0
