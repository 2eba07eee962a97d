"""The step-5 engines' pixel mask (``Options.mask``), which RADHicaL's cascade uses: every engine
computes exactly the masked pixels, with the values its whole-image run gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import inference, nuclei
from pipeline.inference import Options
from pipeline.inference.engines import fcn as fcn_module
from tests.test_radhical import random_level_models


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, inference.Engine]:
    work = tmp_path_factory.mktemp("models")
    random_level_models(work)  # real pycaffe nets with random weights, 3 outputs
    model, mean = work / "models" / "1_1_caffenet_train_w32_iter_1.caffemodel", work / "DB_train_w32_1_1.binaryproto"
    return {m: inference.make_engine(m, model, mean, net_dir=work / "nets") for m in ("reference", "exact", "fcn")}


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> np.ndarray:
    root = tmp_path_factory.mktemp("img")
    img = nuclei.make_cohort(Path(root), n_patients=1, size=260, seed=3)[0]
    from PIL import Image

    return (np.asarray(Image.open(img))[20:64, 10:250] / 255).astype(np.float32)  # 44 x 240


def scattered_mask(shape: tuple[int, int]) -> np.ndarray:
    """A block touching row 0 and column 0 (which the unmasked run never computes), a block and a
    lone pixel more than 2 x 48 px further right (another fcn box), and the last pixel."""
    m = np.zeros(shape, dtype=bool)
    m[0:6, 0:9] = True
    if shape[1] > 150:
        m[30:40, 150:162] = m[33, 120] = True
    m[-1, -1] = True
    return m


def test_exact_masked_run_computes_exactly_the_masked_pixels(engines, image):
    img = image[:, :40]  # 1760 windows for the whole-image run
    mask = scattered_mask(img.shape[:2])
    whole = engines["exact"].run(img, Options(all_pixels=True))
    masked = engines["exact"].run(img, Options(mask=mask, batch=7))  # batches that split the blocks
    assert masked.shape == whole.shape == img.shape[:2] + (3,)
    assert (masked[~mask] == 0).all()
    np.testing.assert_allclose(masked[mask].sum(axis=1), 1, atol=1e-5)  # computed: softmax sums to 1
    # the same windows one by one; batching changes float sums at 1e-7
    np.testing.assert_allclose(masked[mask], whole[mask], atol=1e-5, rtol=0)
    assert masked[mask][:, 1].std() > 0  # not a constant output


def test_fcn_masked_run_computes_the_tiles_with_the_whole_images_values(engines, image):
    fcn = engines["fcn"]
    # the reach of the deploy net's fully convolutional form: window rows -14 .. +52 (5x5 convolutions
    # with pad 2, 3x3/2 poolings, ip1 as 4x4 on pool3: lo = ((((0*2-2)*2-2)*2-2)... by hand in fcn.py),
    # so a pixel depends on 37 px either side (mirrored pass: c-37), 21 beyond the region's 16-px pad
    assert fcn.context == 37 and fcn.margin == 21
    mask = scattered_mask(image.shape[:2])
    whole = fcn.run(image, Options(all_pixels=True))
    masked = fcn.run(image, Options(mask=mask))
    assert fcn.last_work["whole"]  # at 64-px tiles the four needed tiles cost more than the 44 x 240 image
    np.testing.assert_allclose(masked[mask], whole[mask], atol=2e-6, rtol=0)
    try:
        # 16-px tiles, 3 x 15: the mask's pixels sit in 8 of them, 2 x 2 at rows 30-39 (one rectangle), 5 regions;
        # regions even when the whole image would cost less
        fcn.tile, fcn.whole_when_cheaper = 16, False
        mask[20:24, 48] = True  # a pixel column on a tile's left edge, away from the image border
        masked = fcn.run(image, Options(mask=mask))
        assert fcn.last_work == {"tiles": 8, "tiles_total": 45, "regions": 5, "whole": False}
        assert (masked[~mask] == 0).all()
        np.testing.assert_allclose(masked[mask].sum(axis=1), 1, atol=1e-5)
        # the whole image's values up to float32 summation order (other blob sizes, other GEMM blocking)
        np.testing.assert_allclose(masked[mask], whole[mask], atol=2e-6, rtol=0)
        assert masked[mask][:, 1].std() > 0
        fcn.margin -= 4  # short of the net's reach: other values (measured 5e-5 here)
        short = fcn.run(image, Options(mask=mask))
        assert np.abs(short[mask] - whole[mask]).max() > 1e-5
    finally:
        fcn.tile, fcn.margin, fcn.whole_when_cheaper = fcn_module.TILE, 21, True


def test_tile_plan_by_hand():
    # a 10 x 25 mask, 4-px tiles (3 x 7), margin 2: tiles (0,1) (0,2) run; (1,1) (1,2) the same run one
    # row down, merged; (2,6) alone at the corner
    m = np.zeros((10, 25), bool)
    m[1, 5] = m[3, 9] = m[5, 4] = m[7, 11] = m[9, 24] = True
    plan = fcn_module.tile_plan(m, 4, 2)
    assert plan.tiles == 5 and plan.tiles_total == 21
    # tiles rows 0..8, cols 4..12, widened by 2: rows -2..10 slid inside the 10 rows -> 0..10 (clipped)
    assert plan.regions[0] == fcn_module.Region(0, 8, 4, 12, 0, 10, 2, 14)
    # the corner tile, rows 8..10, cols 24..25: widened to 6 rows and 5 columns, slid inside: 4..10, 20..25
    assert plan.regions[1] == fcn_module.Region(8, 10, 24, 25, 4, 10, 20, 25)
    # each region is computed with the 16-px padding a side: (10+32)(12+32) + (6+32)(5+32) = 3254 input
    # pixels against the whole image's (10+32)(25+32) = 2394: the whole image is cheaper
    assert plan.whole
    one = np.zeros((200, 200), bool)
    one[100, 100] = True  # tile 25 x 25 of 50 x 50: a 4 + 2 x 2 = 8-px region, 40 x 40 padded, not the whole
    assert fcn_module.tile_plan(one, 4, 2) == fcn_module.TilePlan(
        (fcn_module.Region(100, 104, 100, 104, 98, 106, 98, 106),), 1, 2500, False
    )
    assert fcn_module.tile_plan(np.ones((10, 25), bool), 4, 2).whole
    assert fcn_module.tile_plan(np.zeros((10, 25), bool), 4, 2) == fcn_module.TilePlan((), 0, 21, False)


def test_reference_masked_equals_exact_masked(engines, image):
    mask = scattered_mask(image.shape[:2])
    a = engines["exact"].run(image, Options(mask=mask))
    b = engines["reference"].run(image, Options(mask=mask))
    assert (b[~mask] == 0).all()
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert inference.ENGINES["exact"].mask_work == "windows" and inference.ENGINES["fcn"].mask_work == "tiles"


def test_mask_of_another_shape_is_named(engines, image):
    for mode in ("reference", "exact", "fcn"):
        with pytest.raises(ValueError, match=r"pixel mask is \(3, 3\), the image \(44, 240\)"):
            engines[mode].run(image, Options(mask=np.ones((3, 3), bool)))


def test_empty_mask_computes_nothing(engines, image):
    for mode in ("reference", "exact", "fcn"):
        out = engines[mode].run(image, Options(mask=np.zeros(image.shape[:2], bool)))
        assert out.shape == image.shape[:2] + (3,) and not out.any()


def test_masked_progress_adds_up_to_the_masks_pixels(engines, image):
    # step 5's progress bar (Engine.run's progress, totalled by window_total) with a mask counts the
    # masked pixels: 6 x 9 + 10 x 12 + 1 + 1 = 176 in the 44 x 240 image
    mask = scattered_mask(image.shape[:2])
    assert inference.Engine.window_total(*image.shape[:2], Options(mask=mask)) == 176
    for mode in ("reference", "exact", "fcn"):
        counts: list[int] = []
        engines[mode].run(image, Options(mask=mask, batch=7), counts.append)
        assert sum(counts) == 176, mode
        if mode == "exact":  # reference: one call of 8192 windows; fcn: the whole image (cheaper than its tiles)
            assert len(counts) > 1, mode  # reported as it goes (batches of 7)
