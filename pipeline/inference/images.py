"""Step 5 inputs: which images, loaded and resized as the original's caffe.io did."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from pipeline.imageio import load_image

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def resize_like_caffe(img: np.ndarray, factor: float) -> np.ndarray:
    """caffe.io.resize_image(img, [int(h*f), int(w*f)]) as in 2016: min-max normalised bilinear
    skimage resize, mode 'constant', no anti-aliasing (which skimage added later). float32."""
    if factor == 1.0:
        return img
    return resize_to_like_caffe(img, (int(img.shape[0] * factor), int(img.shape[1] * factor)))


def resize_to_like_caffe(img: np.ndarray, new: tuple[int, int]) -> np.ndarray:
    """caffe.io.resize_image(img, new) for an H x W x C image, semantics of :func:`resize_like_caffe`."""
    new = (int(new[0]), int(new[1]))
    if new == img.shape[:2]:  # skimage's bilinear resize to the same size is the identity
        return img.astype(np.float32)
    from skimage.transform import resize

    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.full(new + (img.shape[2],), lo, dtype=np.float32)
    std = (img - lo) / (hi - lo)
    out = resize(std, new, order=1, mode="constant", anti_aliasing=False)
    return (out * (hi - lo) + lo).astype(np.float32)


def load_resized(path: Path, factor: float) -> np.ndarray:
    """An image as the original's step 5 saw it: caffe.io.load_image, then resized by ``factor``
    (H' x W' x 3 float32 RGB in [0, 1])."""
    return resize_like_caffe(load_image(path), factor)


def expand_inputs(items: list[str], list_file: Path | None = None, parents: Path | None = None) -> list[Path]:
    """Image paths from files, globs and folders (``.tif``, ``.tiff``, ``.png``, masks excluded),
    plus the lines of ``list_file``; with ``parents`` only images of a listed ID: names starting with
    "<id>_" (the original's glob "<id>_*.tif") or whose stem is the ID (use case 4's images, each its own
    patient: the original listed them as "im1.tif", so its glob "im1.tif_*.tif" found nothing)."""
    paths: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in it for ch in "*?["):
            paths += sorted(Path(q) for q in glob.glob(it))
        else:
            paths.append(p)
    if list_file:
        paths += [Path(ln.strip()) for ln in Path(list_file).read_text().splitlines() if ln.strip()]
    paths = [p for p in paths if not p.stem.endswith("_mask")]
    if parents:
        ids = [ln.strip() for ln in Path(parents).read_text().splitlines() if ln.strip()]
        paths = [p for p in paths if any(p.name.startswith(f"{i}_") or p.stem == i for i in ids)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"input image(s) do not exist: {', '.join(map(str, missing[:5]))}")
    return list(dict.fromkeys(paths))
