"""The nuclei data set of use case 1 and RADHicaL: layout, masks, the original's class masks, and a
generated look-alike cohort. Shared by both use cases (they import this stage, not each other).

Layout (DL tutorial Code/1-nuclei/step1_make_patches.m, DLLevelTutorial/step1_levels_make_patches_3class.m):
images ``<pid>_500_f<id>_original.tif`` (2000 x 2000 RGB at 40x) with masks
``<pid>_500_f<id>_mask.png`` (incomplete: only some nuclei are annotated). Patients are the
unique prefixes before the first underscore of ``*_mask.png`` (MATLAB ``unique``: sorted); each
patient's images are ``dir('<pid>_*.tif')`` in name order, numbered fi = 1..n; the mask of an
image is ``strrep(name, '_original.tif', '_mask.png')``.

Class masks of the original:

- :func:`edge_ring` (``makeNegativeMask_dilate_sub(mask, 3)``): the mask dilated three times with a
  3x3 square, minus the mask;
- :func:`negative_mask` (``makeNegativeMask(io, 50)``): pixels whose 50 x 50 window holds no
  "dark region" of the red channel; the faithful rule keeps quirk Q2 (``imadjust`` returns uint8,
  so ``J < .3`` means ``J == 0``: about the darkest 5% of red), ``rule="corrected"`` applies the
  intended ``J / 255 < .3``.

Masks (quirk Q3): the original read RADHicaL masks as ``double(imread(mask))``: a 1-bit PNG gives
0/1, an 8-bit PNG 0/255, which changes RADHicaL's class rules at levels 2-4 (see
``pipeline.usecases.radhical.levels``). :func:`read_mask` returns the values as MATLAB would and
says which kind the file is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import folds
from pipeline.matlab import bwareaopen, bwmorph_dilate, imadjust, imfill_holes, imfilter, stretchlim
from pipeline.synth import EOSIN, EOSIN_DENSE, HEMATOXYLIN

log = logging.getLogger(__name__)

#: The layout the code reads (the archive, URL and checksum: ``pipeline.usecases.datasets.NUCLEI``).
LAYOUT = "<pid>_500_f<id>_original.tif with <pid>_500_f<id>_mask.png (incomplete nucleus masks)"
MASK_GLOB = "*_mask.png"

NEGATIVE_RULES = ("faithful", "corrected")
MASK_VALUES = ("faithful", "binary")


class BadMask(ValueError):
    """A mask that cannot be used; the message names the file and the problem."""


# --------------------------------------------------------------------------- layout


def mask_path(image: Path) -> Path:
    """``strrep(name, '_original.tif', '_mask.png')`` beside the image."""
    image = Path(image)
    return image.with_name(image.name.replace("_original.tif", "_mask.png"))


def images_by_patient(folder: Path) -> dict[str, list[Path]]:
    """Patients (sorted prefixes of ``*_mask.png``) and their ``<pid>_*.tif`` images in name order."""
    folder = Path(folder)
    patients = sorted({folds.patient_of(m.name) for m in folder.glob(MASK_GLOB)})
    out = {pid: sorted(q for q in folder.glob(f"{pid}_*.tif") if q.is_file()) for pid in patients}
    for q in sorted(folder.glob("*.tif")):
        if folds.patient_of(q.name) not in out:
            log.warning("%s: no *_mask.png of patient %s; image not used", q, folds.patient_of(q.name))
    for m in sorted(folder.glob(MASK_GLOB)):
        if not m.with_name(m.name.replace("_mask.png", "_original.tif")).is_file():
            log.warning("%s: no image %s beside it; mask not used", m, m.name.replace("_mask.png", "_original.tif"))
    return out


# --------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class Mask:
    """A mask as MATLAB's ``double(imread(.))`` gives it (H x W float64) and what the file is."""

    values: np.ndarray
    kind: str  # "1-bit", "8-bit 0/255", "8-bit 0/1", "8-bit", "16-bit"


def read_mask(path: Path, image_shape: tuple[int, int] | None = None) -> Mask:
    """Read a nucleus mask; :class:`BadMask` names the file when it is missing, unreadable, has
    channels, or (with ``image_shape``) is not the image's size."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise BadMask(f"{path}: mask does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im)
    except Exception as exc:
        raise BadMask(f"{path}: cannot read mask ({exc.__class__.__name__}: {exc})") from exc
    if arr.ndim != 2:
        raise BadMask(f"{path}: mask has {arr.shape[2]} channels (mode {mode}); a single-channel mask is expected")
    if image_shape is not None and arr.shape != tuple(image_shape[:2]):
        raise BadMask(f"{path}: mask is {arr.shape[0]}x{arr.shape[1]}, its image is {image_shape[0]}x{image_shape[1]}")
    if mode == "1":
        kind = "1-bit"
    elif arr.dtype == np.uint8:
        mx = int(arr.max()) if arr.size else 0
        kind = "8-bit 0/255" if mx == 255 and np.isin(arr, (0, 255)).all() else "8-bit 0/1" if mx <= 1 else "8-bit"
    else:
        kind = f"{arr.dtype.itemsize * 8}-bit"
    return Mask(arr.astype(np.float64), kind)


def mask_values(mask: Mask, rule: str = "faithful") -> np.ndarray:
    """The mask values RADHicaL filters: as read (``faithful``, 0/255 for 8-bit masks: quirk Q3)
    or 0/1 (``binary``, what the paper's class definition assumes)."""
    if rule not in MASK_VALUES:
        raise ValueError(f"--mask-values {rule!r} is not one of {', '.join(MASK_VALUES)}")
    return mask.values if rule == "faithful" else (mask.values != 0).astype(np.float64)


def edge_ring(mask: np.ndarray, dilations: int = 3) -> np.ndarray:
    """makeNegativeMask_dilate_sub: ``bwmorph(mask, 'dilate', n) & ~mask`` (mask non-zero = on)."""
    on = np.asarray(mask) != 0
    return bwmorph_dilate(on, dilations) & ~on


def dark_regions(io: np.ndarray, rule: str = "faithful") -> np.ndarray:
    """makeNegativeMask's nucleus estimate before the window: dark red (stretched), components of
    at least 100 pixels (8-connected), holes filled. H x W x 3 uint8 in, H x W bool out."""
    if rule not in NEGATIVE_RULES:
        raise ValueError(f"--negative-rule {rule!r} is not one of {', '.join(NEGATIVE_RULES)}")
    io = np.asarray(io)
    if io.dtype != np.uint8 or io.ndim != 3:
        raise ValueError(f"makeNegativeMask needs an H x W x 3 uint8 image, got {io.dtype} {io.shape}")
    red = io[:, :, 0]
    j = imadjust(red, stretchlim(red, (0.05, 0.5)))
    # Q2: J is uint8, so the original's J < .3 holds only for J == 0 (red at or below its 5% point)
    bw = j < 0.3 if rule == "faithful" else j.astype(np.float64) / 255.0 < 0.3
    return imfill_holes(bwareaopen(bw, 100, conn=8), conn=4)


def negative_mask(io: np.ndarray, patch_dim: int = 50, rule: str = "faithful") -> np.ndarray:
    """makeNegativeMask(io, patchDim): pixels whose patchDim x patchDim window (imfilter, zero
    padding, centre floor((d+1)/2)) holds no pixel of :func:`dark_regions`. H x W bool."""
    return imfilter(dark_regions(io, rule), np.ones((patch_dim, patch_dim))) == 0


# --------------------------------------------------------------------------- generated cohort


def _ellipse(
    shape: tuple[int, int], cy: float, cx: float, a: float, b: float, th: float, margin: int = 2
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Bounding box (slices, ``margin`` px beyond the ellipse) and mask of an ellipse with semi-axes
    a, b rotated by th."""
    r = int(np.ceil(max(a, b))) + margin
    y0, y1 = max(0, int(cy) - r), min(shape[0], int(cy) + r + 1)
    x0, x1 = max(0, int(cx) - r), min(shape[1], int(cx) + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    c, s = np.cos(th), np.sin(th)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (slice(y0, y1), slice(x0, x1)), (u / max(a, 0.5)) ** 2 + (v / max(b, 0.5)) ** 2 <= 1


def make_cohort(
    root: Path,
    n_patients: int = 10,
    size: int = 800,
    seed: int = 0,
    images_per_patient: int = 1,
    annotated: float = 0.7,
    first_id: int = 10250,
) -> list[Path]:
    """Generated nucleus-like images and incomplete masks in the data set's layout (not tissue).

    Each ``size`` x ``size`` image has pink, fibrous stroma (smoothed anisotropic noise, paler and
    purpler patches) and three to five nests of dark purple elliptical nuclei (semi-axes 9-18 by
    6-12 px, the size of breast cancer nuclei at 40x, with chromatin texture and a darker rim),
    plus small elongated stromal nuclei. The mask (1-bit PNG) marks only a random ``annotated``
    share of the nest nuclei, each grown or shrunk by a pixel at random: incomplete and imprecise
    like the real annotation. Deterministic for a seed.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    shape = (size, size)
    out = []
    for i in range(n_patients):
        pid = str(first_id + i)
        for k in range(images_per_patient):
            fibres = gaussian_filter(rng.randn(size, size), sigma=(1.5, 9.0) if rng.rand() < 0.5 else (9.0, 1.5))
            blend = np.clip(0.5 + 4 * gaussian_filter(rng.randn(size, size), 40), 0, 1)[:, :, None]
            img = EOSIN * (1 - blend) + EOSIN_DENSE * blend + 60 * fibres[:, :, None] * np.array([0.3, 1.0, 0.5])
            mask = np.zeros(shape, bool)
            taken = np.zeros(shape, bool)
            for _ in range(rng.randint(3, 6)):  # nests of tumour nuclei
                cy0, cx0 = rng.uniform(0.15, 0.85, 2) * size
                spread = rng.uniform(0.10, 0.18) * size
                for _ in range(int(spread**2 / 50)):
                    cy, cx = rng.normal(cy0, spread / 2, 2)
                    a, b, th = rng.uniform(9, 18), rng.uniform(6, 12), rng.uniform(0, np.pi)
                    if not (a < cy < size - a and a < cx < size - a):
                        continue
                    box, nuc = _ellipse(shape, cy, cx, a, b, th)
                    if (nuc & taken[box]).any():
                        continue
                    taken[box] |= nuc
                    _, inner = _ellipse(shape, cy, cx, a - 2, b - 2, th, margin=4)
                    patch = img[box]
                    patch[nuc] = HEMATOXYLIN * rng.uniform(0.75, 1.15) + rng.normal(0, 14, (int(nuc.sum()), 3))
                    patch[nuc & ~inner] *= 0.8
                    if rng.rand() < annotated:
                        grow = float(rng.choice([-1.0, 0.0, 1.0]))
                        _, m = _ellipse(shape, cy, cx, a + grow, b + grow, th, margin=int(2 - grow))
                        mask[box] |= m
            for _ in range(rng.randint(5, 15)):  # stromal nuclei: small, elongated, not annotated
                cy, cx = rng.uniform(10, size - 10, 2)
                box, nuc = _ellipse(shape, cy, cx, rng.uniform(6, 9), rng.uniform(2, 3.5), rng.uniform(0, np.pi))
                nuc &= ~taken[box]
                img[box][nuc] = HEMATOXYLIN * 0.9
            img += rng.normal(0, 5, img.shape)
            stem = f"{pid}_500_f{k + 1:05d}"
            path = root / f"{stem}_original.tif"
            Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(path)
            Image.fromarray(mask).convert("1").save(root / f"{stem}_mask.png")
            out.append(path)
    log.info("generated nuclei cohort: %d images of %dx%d in %s (not real tissue)", len(out), size, size, root)
    return out
