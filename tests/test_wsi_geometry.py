"""Whole-slide geometry, pure: magnification and levels, resampling in global coordinates, tiles, tissue masks."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference import resize_like_caffe
from pipeline.wsi import magnification as mag
from pipeline.wsi import resample, tiling, tissue

# ---------------------------------------------------------------- magnification


def test_slide_objective_order():
    both = {"openslide.objective-power": "40", "openslide.mpp-x": "0.2527"}
    assert mag.slide_objective(both) == (40.0, "objective-power", 0.2527)
    assert mag.slide_objective({"openslide.mpp-x": "0.25"}) == (40.0, "mpp", 0.25)  # 10 / 0.25
    assert mag.slide_objective(both, mpp=0.5) == (20.0, "--mpp", 0.5)  # --mpp wins
    assert mag.slide_objective({"openslide.objective-power": "nan", "openslide.mpp-x": "0.5"})[0] == 20.0
    with pytest.raises(mag.MissingMagnification, match="--mpp"):
        mag.slide_objective({"openslide.vendor": "generic-tiff"})
    with pytest.raises(ValueError, match="positive"):
        mag.slide_objective(both, mpp=0)


def test_choose_level():
    ds = [1.0, 4.0002, 16.001, 32.0]  # real slides' downsamples are not exact
    assert mag.choose_level(ds, 4) == 1  # within the tolerance: no resampling
    assert mag.choose_level(ds, 3.9) == 0  # level 1 is coarser than wanted
    assert mag.choose_level(ds, 20) == 2
    assert mag.choose_level(ds, 0.25) == 0  # enlarging: level 0


def test_plan_scale_levels_and_factors():
    shapes, ds = [(1000, 1200), (500, 600), (250, 300)], [1.0, 2.0, 4.0]
    # epithelium (10x) on a 40x slide: level 2 (downsample 4) as it is
    s = mag.plan_scale(shapes, ds, (40.0, "objective-power", 0.25), 10.0)
    assert (s.level, s.factor, s.shape, s.downsample, s.model_mpp) == (2, 1.0, (250, 300), 4.0, 1.0)
    # IDC (2.5x) on a 20x slide: downsample 8, from level 2 (4) shrunk by 0.5: 125 x 150
    s = mag.plan_scale(shapes, ds, (20.0, "objective-power", None), 2.5)
    assert (s.level, s.factor, s.shape) == (2, 0.5, (125, 150))
    assert s.model_mpp == 4.0  # 10 / 2.5 by the convention (no slide mpp)
    # lymphocytes ("80x") on a 20x slide: level 0 enlarged 4x
    s = mag.plan_scale(shapes, ds, (20.0, "mpp", 0.5), 80.0)
    assert (s.level, s.factor, s.shape, s.model_mpp) == (0, 4.0, (4000, 4800), 0.125)
    # 10x from a 20x slide with levels 1 and 4 only: level 0 shrunk by 0.5, int(n * f) as caffe.io's callers
    s = mag.plan_scale([(1001, 999), (250, 249)], [1.0, 4.0], (20.0, "objective-power", None), 10.0)
    assert (s.level, s.factor, s.shape) == (0, 0.5, (500, 499))


# ---------------------------------------------------------------- resampling


def test_resample_half_is_the_mean_of_2x2_blocks_and_equals_caffe_resize():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (12, 10, 3)).astype(np.uint8)
    out = resample.resample(img, (0, 0), 0.5, (0, 6, 0, 5), img.shape[:2])
    # u = (g + 0.5) / 0.5 - 0.5 = 2g + 0.5: halfway between pixels 2g and 2g+1 on both axes
    blocks = img.astype(np.float64).reshape(6, 2, 5, 2, 3).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(out, blocks, atol=1e-6)
    # the same as step 5's resize (caffe.io.resize_image of 2016) of the whole image
    np.testing.assert_allclose(out, resize_like_caffe(img.astype(np.float32) / 255, 0.5), atol=1e-6)


@pytest.mark.parametrize("factor", [1.0, 0.5, 0.37, 2.5, 4.0])
def test_resampled_tiles_equal_the_whole(factor):
    """Any box read through level_box + resample equals the same pixels of the whole slide resampled at once."""
    rng = np.random.RandomState(1)
    level = rng.randint(0, 256, (41, 37, 3)).astype(np.uint8)
    shape = (int(41 * factor), int(37 * factor))
    whole = resample.resample(level, (0, 0), factor, (0, shape[0], 0, shape[1]), level.shape[:2])
    assert whole.shape == shape + (3,) and whole.dtype == np.float32
    for _ in range(12):
        y0, x0 = rng.randint(0, shape[0] - 1), rng.randint(0, shape[1] - 1)
        box = (y0, rng.randint(y0 + 1, shape[0] + 1), x0, rng.randint(x0 + 1, shape[1] + 1))
        a, b, c, d = resample.level_box(box, factor, level.shape[:2])
        part = resample.resample(level[a:b, c:d], (a, c), factor, box, level.shape[:2])
        assert np.array_equal(part, whole[box[0] : box[1], box[2] : box[3]])


def test_resample_refuses_a_region_too_small():
    level = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="does not cover"):
        resample.resample(level[2:10, 2:10], (2, 2), 0.5, (0, 5, 0, 5), (20, 20))


# ---------------------------------------------------------------- tiles


def test_grid_context_and_parts():
    tiles = tiling.grid((10, 7), 4)
    assert [(t.row, t.col, t.box) for t in tiles] == [
        (0, 0, (0, 4, 0, 4)),
        (0, 1, (0, 4, 4, 7)),
        (1, 0, (4, 8, 0, 4)),
        (1, 1, (4, 8, 4, 7)),
        (2, 0, (8, 10, 0, 4)),
        (2, 1, (8, 10, 4, 7)),
    ]
    assert tiles[3].name == "r00001_c00001" and tiles[3].pixels == 12
    assert tiling.with_context(tiles[3], 2, (10, 7)) == (2, 10, 2, 7)  # clipped at the slide's edge
    assert tiling.with_context(tiles[0], 16, (10, 7)) == (0, 10, 0, 7)
    parts = [tiling.part(list(range(10)), i, 3) for i in range(3)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]  # contiguous, all, no overlap
    assert tiling.part([1, 2], 2, 4) == [] and tiling.parse_part("3/4") == (3, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError):
            tiling.parse_part(bad)


# ---------------------------------------------------------------- tissue


def test_tissue_grey_rule_and_otsu():
    # grey levels (MATLAB rgb2gray of equal channels = that value): 0.2, 0.8, 0.81, 0.95
    rgb = np.array([[51, 204, 207, 242]], dtype=np.uint8)[:, :, None].repeat(3, axis=2)
    assert tissue.grey_level(rgb).round(3).tolist() == [[0.2, 0.8, 0.812, 0.949]]
    assert tissue.tissue_mask(rgb, "grey").tolist() == [[True, True, False, False]]  # rgb2gray > .8: background
    assert tissue.tissue_mask(rgb, "grey", 0.9).tolist() == [[True, True, True, False]]
    assert tissue.tissue_mask(rgb, "none").all()
    two = np.array([[60] * 6 + [240] * 10], dtype=np.uint8)[:, :, None].repeat(3, axis=2)
    assert tissue.tissue_mask(two, "otsu").tolist() == [[True] * 6 + [False] * 10]
    assert not tissue.tissue_mask(np.full((4, 4, 3), 242, np.uint8), "otsu").any()  # glass only
    with pytest.raises(ValueError, match="unknown tissue method"):
        tissue.tissue_mask(rgb, "magic")


def test_tissue_fraction_and_block_mean():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[1, 1] = True
    # model box rows 0..3, columns 0..3 at 0.5 mask pixels per model pixel: mask rows/cols 0..1 (2 of 4 tissue)
    assert tissue.tissue_fraction(mask, (0, 4, 0, 4), 0.5) == 0.5
    assert tissue.tissue_fraction(mask, (4, 8, 4, 8), 0.5) == 0.0
    assert tissue.tissue_fraction(mask, (1, 2, 1, 2), 0.5) == 1.0  # widened to mask pixel (0, 0)
    rgb = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    bm = tissue.block_mean(rgb, 2)
    assert bm.shape == (3, 2, 3)
    assert bm[0, 0].tolist() == [6, 7, 8]  # mean of rows 0-1, columns 0-1: (0+3+9+12)/4 = 6
    assert bm[2, 1].tolist() == [42, 43, 44]  # the partial corner block holds one pixel


# ---------------------------------------------------------------- claims of killed workers


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    import os
    import socket
    import subprocess

    from pipeline.claims import Claim, _pidns

    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process now
    lock, host, ns = tmp_path / ".t.lock", socket.gethostname(), _pidns()
    gen0 = tmp_path / ".t.lock.0"  # claim files: <lock>.<generation>, "host ns pid id"
    assert ns.startswith("pid:[")  # Linux: the namespace is known
    gen0.write_text(f"{host} {ns} {dead.pid} x\n")
    claim = Claim(lock)
    assert claim.acquire() and claim.path == tmp_path / ".t.lock.1"  # taken over although fresh
    assert claim.path.read_text().split()[:3] == [host, ns, str(os.getpid())]  # names this process
    assert not gen0.exists()
    claim.release()
    for text in (
        f"{host} {ns} {os.getpid()} x",  # a live owner keeps it
        f"other-host {ns} {dead.pid} x",  # another host's process cannot be checked from here
        f"{host} pid:[1] {dead.pid} x",  # nor another container's (same host name, own pids)
        f"{host} {dead.pid}",
    ):  # a claim that does not say its namespace waits to be stale
        gen0.write_text(text + "\n")
        assert not Claim(lock).acquire(), text
