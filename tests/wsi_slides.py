"""Small pyramidal tiled TIFF slides made from real tissue, for the whole-slide tests and benchmark.

The tissue is scikit-image's bundled immunohistochemistry image (512 x 512, real IHC-stained
tissue; no download), mirrored to fill the slide and cut to an ellipse on near-white glass, so a
tissue mask has something to skip. Two layouts OpenSlide reads:

- ``aperio``: an SVS-like TIFF (ImageDescription "Aperio Image Library ... |AppMag = X|MPP = Y",
  level 0 tiled, a stripped thumbnail second, then the reduced levels tiled): OpenSlide reports
  objective power and mpp;
- ``generic``: a plain tiled TIFF with reduced-resolution directories, with resolution tags (OpenSlide
  reports mpp only) or without (no magnification at all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.wsi.tissue import block_mean


def tissue_canvas(shape: tuple[int, int], fill: float = 0.7, seed: int = 0) -> np.ndarray:
    """H x W x 3 uint8: real tissue (the IHC image, mirrored) inside a centred ellipse whose axes are
    ``fill`` of the slide's, glass (grey levels about 242, a little noise) outside."""
    from skimage import data

    ihc = data.immunohistochemistry()
    h, w = shape
    quad = np.concatenate([np.concatenate([ihc, ihc[:, ::-1]], 1), np.concatenate([ihc[::-1], ihc[::-1, ::-1]], 1)], 0)
    reps = (-(-h // quad.shape[0]), -(-w // quad.shape[1]), 1)
    tissue = np.tile(quad, reps)[:h, :w]
    rng = np.random.RandomState(seed)
    glass = np.clip(242 + rng.randint(-3, 4, (h, w, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - (h - 1) / 2) / (fill * h / 2)) ** 2 + ((xx - (w - 1) / 2) / (fill * w / 2)) ** 2 <= 1
    return np.where(inside[:, :, None], tissue, glass)


def write_slide(
    path: Path,
    rgb: np.ndarray,
    objective: float | None = None,
    mpp: float | None = None,
    downsamples: tuple[int, ...] = (1, 2, 4),
    tile: int = 128,
    layout: str = "aperio",
) -> Path:
    """Write ``rgb`` (level 0) as a pyramidal tiled TIFF with levels block-averaged by ``downsamples``."""
    import tifffile

    path = Path(path)
    h, w = rgb.shape[:2]
    levels = [block_mean(rgb, d) for d in downsamples]
    opts = {"photometric": "rgb", "compression": "zlib", "metadata": None}
    with tifffile.TiffWriter(path) as tw:
        for i, (d, lv) in enumerate(zip(downsamples, levels)):
            extra = {"subfiletype": 1} if i else {}
            if layout == "aperio" and i == 0:
                tags = "".join(f"|{k} = {v:g}" for k, v in (("AppMag", objective), ("MPP", mpp)) if v is not None)
                extra["description"] = (
                    f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] ({tile}x{tile}) RAW{tags}"
                )
            elif layout == "generic" and mpp is not None:
                extra.update(resolution=(1e4 / (mpp * d), 1e4 / (mpp * d)), resolutionunit="CENTIMETER")
            tw.write(lv, tile=(tile, tile), **opts, **extra)
            if layout == "aperio" and i == 0:
                tw.write(block_mean(rgb, max(1, max(h, w) // 64)), **opts)  # the stripped thumbnail
    return path
