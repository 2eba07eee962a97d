"""Tile geometry of the U-Net tutorial, pure numpy (no torch).

Two tilings, both from choosehappy/PytorchDigitalPathology ``segmentation_epistroma_unet/``:

- :func:`db_tiles` (make_hdf5.py): reflect-pad the image by ``mirror_pad`` on every side, then cut
  ``patch x patch`` tiles every ``stride`` pixels, row-major, as sklearn's removed
  ``extract_patches(io, (patch, patch, 3), stride)`` reshaped to ``(-1, patch, patch, 3)``; a
  remainder that no tile reaches is dropped (quirk Q9).
- :func:`output_grid`, :func:`output_tiles`, :func:`stitch` (make_output_unet_cmd.py): reflect-pad by
  ``stride // 2`` (64 for the 256 tile), zero-pad bottom/right to a multiple of ``patch``, cut tiles
  with stride ``patch // 2``, keep each tile's central ``stride x stride`` block and mosaic the blocks,
  cropped to the input size: output pixel (r, c) comes from tile (r // stride, c // stride), whose
  central block holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Untileable(ValueError):
    """An image whose size the tiling cannot take; the caller names the file."""


def tile_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets of tiles along one axis of length ``size`` (extract_patches' ``range``)."""
    if size < patch:
        return []
    return list(range(0, size - patch + 1, stride))


def db_tiles(arr: np.ndarray, patch: int = 500, stride: int = 250, mirror_pad: int = 250) -> np.ndarray:
    """make_hdf5.py's tiles of an H x W (x C) array: N x patch x patch (x C), same dtype.

    Reflect padding (numpy ``mode="reflect"``: the edge pixel is not repeated) of ``mirror_pad``;
    tiles row-major. Raises :class:`Untileable` when the image is not larger than the mirror padding
    (the reflection would reflect itself) or no tile fits.
    """
    h, w = arr.shape[:2]
    if min(h, w) <= mirror_pad:
        raise Untileable(
            f"image is {h}x{w}: each side must exceed the mirror padding {mirror_pad} (make_hdf5.py mirror_pad_size)"
        )
    pad = [(mirror_pad, mirror_pad), (mirror_pad, mirror_pad)] + [(0, 0)] * (arr.ndim - 2)
    io = np.pad(arr, pad, mode="reflect")
    rows, cols = tile_starts(io.shape[0], patch, stride), tile_starts(io.shape[1], patch, stride)
    if not rows or not cols:
        raise Untileable(f"image is {h}x{w}: padded to {io.shape[0]}x{io.shape[1]} it holds no {patch}x{patch} tile")
    return np.stack([io[r : r + patch, c : c + patch] for r in rows for c in cols])


def db_remainder(size: int, patch: int = 500, stride: int = 250, mirror_pad: int = 250) -> int:
    """Pixels of a padded axis that no tile reaches (Q9: zero when (size + 2 pad - patch) % stride == 0)."""
    padded = size + 2 * mirror_pad
    if padded < patch:
        return padded
    return (padded - patch) % stride


@dataclass(frozen=True)
class OutputGrid:
    """Geometry of make_output_unet_cmd.py for one H x W image (all in pixels)."""

    height: int
    width: int
    patch: int  # tile side (-p, 256)
    stride: int  # patch // 2 (128)
    pad: int  # reflect padding, stride // 2 (64)
    pad_bottom: int  # zero padding to a multiple of patch
    pad_right: int
    rows: int  # tiles down
    cols: int  # tiles across

    @property
    def n_tiles(self) -> int:
        return self.rows * self.cols


def output_grid(height: int, width: int, patch: int = 256) -> OutputGrid:
    """The tiling of an image of ``height x width``. Raises :class:`Untileable` for an odd or
    too-small ``patch`` (its half must split in two) or an image the reflect padding cannot take."""
    if patch < 4 or patch % 4:
        raise Untileable(f"tile size {patch} must be a multiple of 4 (stride = tile/2, kept centre = stride)")
    stride = patch // 2
    pad = stride // 2
    if min(height, width) <= pad:
        raise Untileable(f"image is {height}x{width}: each side must exceed the reflect padding {pad}")
    ph, pw = height + 2 * pad, width + 2 * pad
    pad_bottom = int(np.ceil(ph / patch) * patch - ph)
    pad_right = int(np.ceil(pw / patch) * patch - pw)
    rows = (ph + pad_bottom - patch) // stride + 1
    cols = (pw + pad_right - patch) // stride + 1
    return OutputGrid(height, width, patch, stride, pad, pad_bottom, pad_right, rows, cols)


def output_tiles(img: np.ndarray, grid: OutputGrid) -> np.ndarray:
    """The tiles of an H x W x C image: n_tiles x patch x patch x C, row-major (same dtype)."""
    p = grid.pad
    io = np.pad(img, [(p, p), (p, p)] + [(0, 0)] * (img.ndim - 2), mode="reflect")
    io = np.pad(io, [(0, grid.pad_bottom), (0, grid.pad_right)] + [(0, 0)] * (img.ndim - 2), mode="constant")
    s, k = grid.stride, grid.patch
    return np.stack([io[r * s : r * s + k, c * s : c * s + k] for r in range(grid.rows) for c in range(grid.cols)])


def stitch(outputs: np.ndarray, grid: OutputGrid) -> np.ndarray:
    """Mosaic of the tiles' central blocks, cropped to the image: H x W x C from
    n_tiles x patch x patch x C (the network's outputs per tile, channels last)."""
    p, s = grid.pad, grid.stride
    centres = outputs.reshape(grid.rows, grid.cols, grid.patch, grid.patch, -1)[:, :, p : p + s, p : p + s, :]
    mosaic = centres.transpose(0, 2, 1, 3, 4).reshape(grid.rows * s, grid.cols * s, -1)
    return mosaic[: grid.height, : grid.width]
