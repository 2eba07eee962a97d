"""MATLAB image functions the original patch scripts used, reimplemented with numpy.

- :func:`imresize`: ``imresize(A, [m n])`` with the default bicubic kernel, antialiased when
  shrinking (MATLAB's ``contributions``: kernel widened by 1/scale, symmetric border indices,
  weights normalised to sum 1), one dimension at a time, the dimension with the smaller scale
  first, and -- as MATLAB's ``imresizemex`` does for integer images -- the intermediate result
  rounded back to the input's class after each pass.
- :func:`imrotate_crop`: ``imrotate(A, angle, 'crop')`` with the default nearest-neighbour
  interpolation: counter-clockwise rotation about the image centre, output the input's size,
  zeros outside. Multiples of 90 degrees on square images are exact ``rot90``.

Arrays are H x W or H x W x C; integer inputs keep their dtype.
"""
from __future__ import annotations

import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def contributions(in_len: int, out_len: int, scale: float, antialias: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len x P) and 0-based source indices (out_len x P) of MATLAB's imresize.

    Follows imresize.m's ``contributions`` for the bicubic kernel (width 4).
    """
    kernel_width = 4.0
    if scale < 1 and antialias:
        def h(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        h = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]          # 1-based
    weights = h(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    ind = aux[np.mod(ind - 1, aux.size).astype(int)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], (ind[:, keep] - 1).astype(np.intp)


def _to_class(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert doubles to ``dtype`` as MATLAB does (round half away from zero, saturate)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        r = np.sign(values) * np.floor(np.abs(values) + 0.5)
        return np.clip(r, info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _resize_along(a: np.ndarray, axis: int, out_len: int, antialias: bool, scale: float | None = None) -> np.ndarray:
    in_len = a.shape[axis]
    scale = out_len / in_len if scale is None else scale
    w, idx = contributions(in_len, out_len, scale, antialias)
    moved = np.moveaxis(a.astype(np.float64), axis, 0)          # in_len x ...
    gathered = moved[idx]                                       # out_len x P x ...
    shape = w.shape + (1,) * (moved.ndim - 1)
    out = (gathered * w.reshape(shape)).sum(axis=1)
    return np.moveaxis(_to_class(out, a.dtype), 0, axis)


def imresize(a: np.ndarray, out_shape: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(a, [rows cols])`` (bicubic, antialiasing on by default)."""
    a = np.asarray(a)
    scales = [out_shape[0] / a.shape[0], out_shape[1] / a.shape[1]]
    order = sorted(range(2), key=lambda d: scales[d])  # stable: rows first on ties, as MATLAB's sort
    out = a
    for d in order:
        if out.shape[d] != out_shape[d] or scales[d] != 1:
            out = _resize_along(out, d, out_shape[d], antialias)
    return out


def imresize_scale(a: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(a, scale)``: output ceil(scale * size), kernel positions from ``scale`` itself.

    Logical inputs are resized as doubles and thresholded at 0.5 (MATLAB returns a logical image).
    """
    a = np.asarray(a)
    is_bool = a.dtype == bool
    x = a.astype(np.float64) if is_bool else a
    out = x
    for d in (0, 1):
        out = _resize_along(out, d, int(math.ceil(scale * a.shape[d])), antialias, scale)
    return out > 0.5 if is_bool else out


def rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: 0.298936 R + 0.587043 G + 0.114021 B, rounded for integer images."""
    coef = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    g = rgb[..., :3].astype(np.float64) @ coef
    return _to_class(g, rgb.dtype)


def bwmorph_dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """MATLAB ``bwmorph(mask, 'dilate', n)``: n dilations with a 3x3 square, outside the image 0."""
    from scipy.ndimage import binary_dilation
    if n <= 0:
        return mask.astype(bool)
    return binary_dilation(mask.astype(bool), structure=np.ones((3, 3), bool), iterations=n, border_value=0)


def find_colmajor(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``[r, c] = find(mask)``: 1-based rows and columns in column-major order."""
    c, r = np.nonzero(mask.T)
    return r + 1, c + 1


def matlab_round(x: float) -> int:
    """MATLAB round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def imrotate_crop(a: np.ndarray, angle: float) -> np.ndarray:
    """MATLAB ``imrotate(a, angle, 'crop')`` with nearest-neighbour interpolation.

    Positive angles rotate counter-clockwise. The output has the input's size; pixels that map
    from outside the input are 0.
    """
    a = np.asarray(a)
    k = angle / 90.0
    if float(k).is_integer() and (a.shape[0] == a.shape[1] or int(k) % 2 == 0):
        return np.ascontiguousarray(np.rot90(a, int(k) % 4, axes=(0, 1)))
    h, w = a.shape[:2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    # inverse mapping of a counter-clockwise rotation in image (row down) coordinates
    sx = c * dx - s * dy + cx
    sy = s * dx + c * dy + cy
    sxr = np.floor(sx + 0.5).astype(np.intp)
    syr = np.floor(sy + 0.5).astype(np.intp)
    valid = (sxr >= 0) & (sxr < w) & (syr >= 0) & (syr < h)
    out = np.zeros_like(a)
    out[valid] = a[syr[valid], sxr[valid]]
    return out
