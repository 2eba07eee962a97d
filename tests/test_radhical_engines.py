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


@pytest.fixture(scope="module")
def big_image(tmp_path_factory) -> np.ndarray:
    root = tmp_path_factory.mktemp("big")
    img = nuclei.make_cohort(Path(root), n_patients=1, size=260, seed=3)[0]
    from PIL import Image

    return (np.asarray(Image.open(img))[50:210] / 255).astype(np.float32)  # 160 x 260


def test_fcn_masked_run_computes_the_tiles_with_the_whole_images_values(engines, image, big_image):
    fcn = engines["fcn"]
    # the reach of the deploy net's fully convolutional form: window rows -14 .. +52 (5x5 convolutions
    # with pad 2, 3x3/2 poolings, ip1 as 4x4 on pool3), so a pixel depends on 37 px either side
    # (mirrored pass: c-37), 21 beyond the 16-px pad a region is cut with
    assert fcn.context == 37 and fcn.margin == 21
    mask = scattered_mask(image.shape[:2])
    whole = fcn.run(image, Options(all_pixels=True))
    masked = fcn.run(image, Options(mask=mask))
    assert fcn.last_work["whole"]  # 44 x 240: its 4 needed 64-px tiles cost more than the whole image
    np.testing.assert_allclose(masked[mask], whole[mask], atol=2e-6, rtol=0)
    # 160 x 260 in 16-px tiles (10 x 17): a corner block (1 tile), a pixel column on tile (6, 13)'s left
    # edge, a 20 x 20 block over 2 x 2 tiles (one box), the last pixel (1 tile): 7 tiles, 4 regions,
    # two of them 58 x 58 (16 + 2 x 21, one batch)
    m = np.zeros(big_image.shape[:2], dtype=bool)
    m[0:6, 0:9] = m[100:104, 208] = m[120:140, 100:120] = m[-1, -1] = True
    whole = fcn.run(big_image, Options(all_pixels=True))
    try:
        fcn.tile = 16
        masked = fcn.run(big_image, Options(mask=m))
        assert fcn.last_work == {"tiles": 7, "tiles_total": 170, "regions": 4, "whole": False}
        assert (masked[~m] == 0).all()
        np.testing.assert_allclose(masked[m].sum(axis=1), 1, atol=1e-5)
        # the whole image's values up to float32 summation order (other blob sizes, other GEMM blocking)
        np.testing.assert_allclose(masked[m], whole[m], atol=2e-6, rtol=0)
        assert masked[m][:, 1].std() > 0
        fcn.margin -= 4  # short of the net's reach: other values at the tile's left edge (measured 5e-5)
        short = fcn.run(big_image, Options(mask=m))
        assert np.abs(short[m] - whole[m]).max() > 1e-5
    finally:
        fcn.tile, fcn.margin = fcn_module.TILE, 21


def test_tile_plan_by_hand():
    # a 10 x 25 mask in 4-px tiles (3 x 7), margin 2: needed tiles (0,1) (0,2) (1,1) (1,2) (2,6); runs
    # rows 0 and 1 (cols 1-2) merge (a 10 x 12 region, 42 x 44 padded = 1848 < 2 x 40 x 44), then the corner
    # tile (6 x 5 region, 38 x 37 = 1406) joins them: 10 x 25 (42 x 57 = 2394 < 1848 + 1406), the whole image
    m = np.zeros((10, 25), bool)
    m[1, 5] = m[3, 9] = m[5, 4] = m[7, 11] = m[9, 24] = True
    assert fcn_module.tile_plan(m, 4, 2) == fcn_module.TilePlan(
        (fcn_module.Region(0, 10, 4, 25, 0, 10, 0, 25),), 5, 21, True
    )
    # 200 x 200 (50 x 50 tiles): two tiles 2 apart share one region (8 x 16, 40 x 48 padded = 1920 < 2 x 40 x 40);
    # a far tile stays alone; at the border a region slides inside the image
    two = np.zeros((200, 200), bool)
    two[100, 100] = two[100, 110] = two[150, 20] = two[199, 0] = True
    assert fcn_module.tile_plan(two, 4, 2) == fcn_module.TilePlan(
        (
            fcn_module.Region(100, 104, 100, 112, 98, 106, 98, 114),
            fcn_module.Region(148, 152, 20, 24, 146, 154, 18, 26),
            fcn_module.Region(196, 200, 0, 4, 192, 200, 0, 8),
        ),
        4,
        2500,
        False,
    )
    # regions cost 40 x 48 + 2 x 40 x 40 = 5120 padded pixels against the whole image's 232 x 232 = 53824:
    # the whole image is taken once the regions' per-pixel overhead would exceed 53824 / 5120 = 10.51
    assert not fcn_module.tile_plan(two, 4, 2, overhead=10.4).whole and fcn_module.tile_plan(two, 4, 2, 10.6).whole
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


def test_exact_forward_batch_shares_the_windows_evenly():
    from pipeline.inference.engines.exact import ExactEngine

    fb = ExactEngine.forward_batch
    # 6,345 windows at most 1024 a forward: 7 forwards; 6345 / 7 = 906.4 -> 907, rounded up to 16: 912
    # (7 x 912 = 6,384: 39 padded windows, where 7 x 1024 padded 823)
    assert fb(6345, 1024) == 912
    assert fb(2149, 1024) == 720  # 3 forwards: 717 -> 720 (2,160 computed, not 3,072)
    assert fb(40000, 1024) == 1008  # 40 forwards of 1000 -> 1008
    assert fb(400, 1024) == 400 and fb(1, 1024) == 16  # one forward: the windows rounded up to 16
    assert fb(1025, 1024) == 528  # 2 forwards of 513 -> 528
    assert fb(176, 7) == 7  # never above the batch
