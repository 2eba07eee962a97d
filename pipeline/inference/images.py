"""Step 5 inputs: which images, loaded and resized as the original's caffe.io did."""

from __future__ import annotations

import glob
import struct
from pathlib import Path

import numpy as np

from pipeline.imageio import BadImage, load_image

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
#: Default most pixels of an image ``infer`` loads whole (``--max-pixels``): 100 megapixels, e.g.
#: 10 000 x 10 000, about 1.2 GB as float32 RGB and as much again resized; larger images are slides
#: for ``infer-wsi``, which reads them tile by tile.
MAX_PIXELS = 100_000_000


class ImageTooLarge(BadImage):
    """An image with more pixels than the limit of a whole-image load; the message names the file."""


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image from its header, without reading its pixels (TIFF: the first page
    as read; PNG: its IHDR chunk; others: PIL's lazy open). Raises :class:`BadImage`."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                page = tf.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with open(path, "rb") as fh:
            head = fh.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return int(height), int(width)
        from PIL import Image

        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except BadImage:
        raise
    except Exception as exc:
        raise BadImage(f"{path}: cannot read the image's header ({exc.__class__.__name__}: {exc})") from exc


def check_size(path: Path, max_pixels: int = MAX_PIXELS, factor: float = 1.0) -> tuple[int, int]:
    """(height, width) of ``path``; :class:`ImageTooLarge` when the image, or the image resized by
    ``factor``, has more than ``max_pixels`` pixels (0: no limit)."""
    h, w = image_size(path)
    if max_pixels:
        rh, rw = int(h * factor), int(w * factor)
        for ph, pw, how in ((h, w, ""), (rh, rw, f" after --resize {factor:g}")):
            if ph * pw > max_pixels:
                raise ImageTooLarge(
                    f"{path}: {h} x {w} pixels{how and f' ({ph} x {pw}{how})'}, more than the {max_pixels} "
                    f"that infer loads whole (it would need about {ph * pw * 24 / 2**30:.0f} GiB): use "
                    f"python -m pipeline infer-wsi for slides, or raise --max-pixels (0: no limit)"
                )
    return h, w


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


def load_resized(path: Path, factor: float, max_pixels: int | None = None) -> np.ndarray:
    """An image as the original's step 5 saw it: caffe.io.load_image, then resized by ``factor``
    (H' x W' x 3 float32 RGB in [0, 1]). With ``max_pixels`` its size is checked from its header
    first (:func:`check_size`)."""
    if max_pixels is not None:
        check_size(path, max_pixels, factor)
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
