"""Reading whole-slide images through OpenSlide (openslide-python with the openslide-bin library).

Any format OpenSlide reads: Aperio SVS, Hamamatsu NDPI, MIRAX, Leica SCN, Philips TIFF, DICOM,
generic tiled TIFF... Regions come back as RGB uint8; transparent pixels (outside the scanned
area) are composited onto the slide's background colour (``openslide.background-color``, else white).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.wsi.magnification import choose_level
from pipeline.wsi.tissue import block_mean

log = logging.getLogger(__name__)


class SlideError(ValueError):
    """A slide that cannot be opened or read; the message names the file."""


def _openslide():
    try:
        import openslide
    except ImportError as exc:  # the package or its library is missing
        raise SlideError(
            f"openslide cannot be imported ({exc}); run `make setup` (requirements.txt installs "
            "openslide-python and openslide-bin)"
        ) from exc
    return openslide


class Slide:
    """An open slide: level shapes and downsamples, properties, and regions as RGB uint8.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        openslide = _openslide()
        if not self.path.is_file():
            raise SlideError(f"{self.path}: no such slide file")
        try:
            self._osr = openslide.OpenSlide(str(self.path))
        except openslide.OpenSlideUnsupportedFormatError:
            raise SlideError(
                f"{self.path}: not a slide format OpenSlide reads (SVS, NDPI, MRXS, SCN, tiled TIFF, DICOM, ...)"
            ) from None
        except openslide.OpenSlideError as exc:
            raise SlideError(f"{self.path}: OpenSlide cannot open it ({exc})") from None
        self.properties: dict[str, str] = dict(self._osr.properties)
        #: (rows, columns) of each level, level 0 first.
        self.level_shapes: list[tuple[int, int]] = [(h, w) for w, h in self._osr.level_dimensions]
        self.level_downsamples: list[float] = [float(d) for d in self._osr.level_downsamples]
        bg = self.properties.get("openslide.background-color", "FFFFFF")
        try:
            self.background = tuple(int(bg[i : i + 2], 16) for i in (0, 2, 4))
        except ValueError:
            self.background = (255, 255, 255)

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._osr.close()

    @property
    def quickhash(self) -> str:
        """OpenSlide's identity hash of the slide's contents (``openslide.quickhash-1``), or ''."""
        return self.properties.get("openslide.quickhash-1", "")

    def read(self, level: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """Level pixels ``box`` = (y0, y1, x0, x1) of ``level`` as (y1-y0) x (x1-x0) x 3 uint8 RGB."""
        y0, y1, x0, x1 = box
        ds = self.level_downsamples[level]
        try:
            rgba = self._osr.read_region((int(round(x0 * ds)), int(round(y0 * ds))), level, (x1 - x0, y1 - y0))
        except Exception as exc:  # openslide raises OpenSlideError on corrupt tiles
            raise SlideError(
                f"{self.path}: cannot read level {level} rows {y0}..{y1} columns {x0}..{x1} "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
        a = np.asarray(rgba)
        alpha = a[:, :, 3:4].astype(np.float32) / 255
        if alpha.min() >= 1:
            return np.ascontiguousarray(a[:, :, :3])
        bg = np.asarray(self.background, dtype=np.float32)
        return np.floor(a[:, :, :3] * alpha + bg * (1 - alpha) + 0.5).astype(np.uint8)

    def read_downsampled(self, max_downsample: float) -> tuple[np.ndarray, float]:
        """The whole slide at a downsample of at most ``max_downsample`` (level-0 pixels per pixel), read from
        the coarsest fitting level in tiles (about 1024 x 1024, a whole number of blocks a side, so a
        100k-wide slide never sits in memory a strip at a time) and block-averaged by a whole factor:
        (H x W x 3 uint8, downsample)."""
        level = choose_level(self.level_downsamples, max(1.0, max_downsample))
        ld = self.level_downsamples[level]
        k = max(1, int(max_downsample / ld + 1e-6))
        h, w = self.level_shapes[level]
        strip = k * max(1, 1024 // k)
        rows = []
        for y in range(0, h, strip):
            row = [
                block_mean(self.read(level, (y, min(h, y + strip), x, min(w, x + strip))), k)
                for x in range(0, w, strip)
            ]
            rows.append(np.concatenate(row, axis=1))
        return np.concatenate(rows, axis=0), ld * k
