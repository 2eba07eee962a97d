"""The step-5 engines' pixel mask (``Options.mask``), which RADHicaL's cascade uses: every engine
computes exactly the masked pixels, with the values its whole-image run gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import inference, nuclei
from pipeline.inference import Options
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


def test_fcn_masked_run_computes_the_boxes_with_the_whole_images_values(engines, image):
    mask = scattered_mask(image.shape[:2])
    whole = engines["fcn"].run(image, Options(all_pixels=True))
    masked = engines["fcn"].run(image, Options(mask=mask))
    assert (masked[~mask] == 0).all()
    np.testing.assert_allclose(masked[mask].sum(axis=1), 1, atol=1e-5)
    # each cluster's box has a 48-px margin, beyond the net's reach: the whole image's values up to
    # float32 summation order (other blob sizes, other GEMM blocking: measured 1.2e-6 on these boxes;
    # a margin short of the net's reach differs by 1e-2 and more)
    np.testing.assert_allclose(masked[mask], whole[mask], atol=2e-6, rtol=0)
    assert masked[mask][:, 1].std() > 0


def test_reference_masked_equals_exact_masked(engines, image):
    mask = scattered_mask(image.shape[:2])
    a = engines["exact"].run(image, Options(mask=mask))
    b = engines["reference"].run(image, Options(mask=mask))
    assert (b[~mask] == 0).all()
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert inference.ENGINES["exact"].mask_work == "windows" and inference.ENGINES["fcn"].mask_work == "bbox"


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
        if mode != "reference":  # reference: one call of 8192 windows here
            assert len(counts) > 1, mode  # reported as it goes (batches of 7, fcn's 2 boxes)
