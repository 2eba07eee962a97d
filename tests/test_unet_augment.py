"""The U-Net's augmentation pipeline (train_unet_albumentations.py's, :mod:`pipeline.usecases.unet.augment`)
on a generated tile: shapes and dtypes, image / mask / edge ring still aligned after the flips and the
rotation, the rotated-out corners 0 in all three, and the colour jitter changing the hue only.

Each draw's parameters (which flips, the hue shift, the rotation matrix, the crop) are read back from
albumentations (``record=True``) and the masks are recomputed from them with OpenCV independently.
Fast: no training, a 64x64 tile.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

_missing = [m for m in ("torch", "albumentations", "cv2", "scipy") if importlib.util.find_spec(m) is None]
if _missing:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI: the U-Net's dependencies are missing ({', '.join(_missing)}): make setup-unet")
    pytest.skip(f"U-Net dependencies missing ({', '.join(_missing)}): run `make setup-unet`", allow_module_level=True)

import cv2  # noqa: E402
import torch  # noqa: E402

from pipeline.usecases.unet import augment  # noqa: E402
from pipeline.usecases.unet.loss import edge_ring  # noqa: E402

SIZE = 64
#: One saturated colour per region, of distinct value (V = max channel): epithelium, ring, stroma.
COLOURS = {"mask": (120, 40, 100), "ring": (60, 180, 90), "rest": (240, 150, 170)}
V = {k: max(c) for k, c in COLOURS.items()}


def make_tile() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An asymmetric L-shaped epithelium (so that every flip and rotation shows), its 2-px edge ring
    (the trainer's), and an image coloured by region."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[10:40, 12:24] = 1
    mask[30:40, 24:50] = 1
    ring = edge_ring(mask)
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = COLOURS["rest"]
    img[ring == 1] = COLOURS["ring"]
    img[mask == 1] = COLOURS["mask"]
    return img, mask, ring


def expected_geometry(a: np.ndarray, applied: dict, interpolation: int) -> np.ndarray:
    """``a`` flipped, rotated and cropped as the recorded draws say, recomputed with OpenCV."""
    if "VerticalFlip" in applied:
        a = a[::-1]
    if "HorizontalFlip" in applied:
        a = a[:, ::-1]
    m = applied["Rotate"]["matrix"][:2]
    a = cv2.warpAffine(
        np.ascontiguousarray(a), m, (SIZE, SIZE), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    x0, y0, x1, y1 = applied["RandomSizedCrop"]["crop_coords"]
    return a[y0:y1, x0:x1]


def uniform_3x3(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood has one label (outside the tile counts as label 0)."""
    from scipy.ndimage import maximum_filter, minimum_filter

    return maximum_filter(labels, 3, mode="constant") == minimum_filter(labels, 3, mode="constant")


def hue_shifted(rgb: np.ndarray, shift: float) -> np.ndarray:
    """``rgb`` (uint8) with OpenCV's 0..179 hue moved by ``shift`` through a truncating table, as
    HueSaturationValue does for uint8 images; saturation and value untouched."""
    h = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h[..., 0] = np.mod(h[..., 0].astype(np.int16) + shift, 180).astype(np.uint8)
    return cv2.cvtColor(h, cv2.COLOR_HSV2RGB)


def hsv(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(int)


def test_shapes_and_dtypes_of_a_random_crop():
    img, mask, ring = make_tile()
    out = augment.train_transforms(32, seed=1)(image=img, masks=[mask, ring])
    x, (m, r) = out["image"], out["masks"]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == (3, 32, 32)
    assert 0 <= float(x.min()) and float(x.max()) <= 1  # ToFloat(max_value=255): the original's /255
    for t in (m, r):
        assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and tuple(t.shape) == (32, 32)
        assert set(np.unique(t.numpy())) <= {0, 1}  # nearest: still binary
    clean = augment.clean_transforms(32)(image=img, masks=[mask, ring])
    assert (clean["masks"][0].numpy() == mask[16:48, 16:48]).all()  # --clean-val: the centre crop, untouched
    assert torch.equal(clean["image"], torch.from_numpy(img[16:48, 16:48].transpose(2, 0, 1).astype(np.float32) / 255))


def test_flips_rotation_and_hue_keep_image_mask_and_ring_aligned():
    img, mask, ring = make_tile()
    labels = np.where(mask == 1, 1, np.where(ring == 1, 2, 3)).astype(np.uint8)  # 0: outside the rotated tile
    tf = augment.train_transforms(SIZE, seed=7, record=True)  # crop = the whole tile: the corners show
    flips_seen, angles, shifts = set(), [], []
    for _ in range(8):
        out = tf(image=img, masks=[mask, ring])
        applied = dict(out["applied_transforms"])
        flips_seen.add(("VerticalFlip" in applied, "HorizontalFlip" in applied))
        m = applied["Rotate"]["matrix"]
        angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
        shift = applied["HueSaturationValue"]["hue_shift"]
        angles.append(angle)
        shifts.append(shift)
        assert -90 <= angle <= 90 and -25 <= shift <= 0  # Rotate's default limit; hue_shift_limit=(-25, 0)
        got_img = np.round(out["image"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        got_mask, got_ring = (t.numpy() for t in out["masks"])
        # the masks: exactly the recorded flips, rotation (nearest, filled with 0) and crop, recomputed
        assert (got_mask == expected_geometry(mask, applied, cv2.INTER_NEAREST)).all()
        assert (got_ring == expected_geometry(ring, applied, cv2.INTER_NEAREST)).all()
        # the image: the same flips, rotation (bilinear, filled with 0) and crop of the hue-shifted tile,
        # so every image pixel sits where its mask and ring pixels sit
        want = expected_geometry(hue_shifted(img, shift), applied, cv2.INTER_LINEAR)
        assert np.abs(got_img.astype(int) - want).max() <= 1
        lab = expected_geometry(labels, applied, cv2.INTER_NEAREST)
        inner = expected_geometry(uniform_3x3(labels).astype(np.uint8), applied, cv2.INTER_NEAREST) == 1
        v = got_img.max(axis=2).astype(int)
        for code, region in ((1, "mask"), (3, "rest")):  # the 2-px ring has no 3x3-uniform pixel
            sel = inner & (lab == code)
            assert sel.sum() > 20 and np.abs(v[sel] - V[region]).max() <= 1, region
        # rotated corners: outside the rotated tile, 0 in all three
        if 2 < abs(angle) < 88:
            for r, c in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
                assert lab[r, c] == 0 and (got_img[r, c] == 0).all() and got_mask[r, c] == 0 and got_ring[r, c] == 0
        assert not got_mask[lab == 0].any() and not got_ring[lab == 0].any()
        # colour jitter: on the output pixels, the hue moved by the recorded shift (the table truncating),
        # saturation and value unchanged within rounding
        for code, region in ((1, "mask"), (3, "rest")):
            sel = inner & (lab == code)
            h0, s0, v0 = hsv(np.array(COLOURS[region]))[0]
            h, s, vv = hsv(got_img[sel]).T
            dh = np.abs(h - int(np.floor((h0 + shift) % 180)))
            assert np.minimum(dh, 180 - dh).max() <= 1, (region, h0, shift)
            assert np.abs(s - s0).max() <= 2 and np.abs(vv - v0).max() <= 1, region
    assert len(flips_seen) >= 3
    assert sum(2 < abs(a) < 88 for a in angles) >= 4 and min(shifts) < -5  # corners shown, hue changed


def test_the_draws_are_independent_across_transforms():
    """Seeded, each transform draws from one shared stream (:func:`augment.reseed`): the two flips are
    independent (each combination about 1/4 of 200 draws; albumentations' own per-transform seeding
    flipped both or neither) and the angle does not follow the flips."""
    img, mask, ring = make_tile()
    tf = augment.train_transforms(16, seed=3, record=True)
    counts: dict[tuple[bool, bool], int] = {}
    angles = {True: [], False: []}
    for _ in range(200):
        a = dict(tf(image=img, masks=[mask, ring])["applied_transforms"])
        key = ("VerticalFlip" in a, "HorizontalFlip" in a)
        counts[key] = counts.get(key, 0) + 1
        angles[key[0]].append(np.degrees(np.arctan2(a["Rotate"]["matrix"][1, 0], a["Rotate"]["matrix"][0, 0])))
    assert len(counts) == 4 and all(25 <= n <= 75 for n in counts.values()), counts  # 50 +- 4 sd
    assert min(angles[True]) < -45 and max(angles[True]) > 45 and min(angles[False]) < -45  # both spread
    again = augment.train_transforms(16, seed=3, record=True)(image=img, masks=[mask, ring])
    first = augment.train_transforms(16, seed=3, record=True)(image=img, masks=[mask, ring])
    assert torch.equal(again["image"], first["image"])  # one seed, one result
