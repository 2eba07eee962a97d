"""MATLAB image functions the original patch scripts used, reimplemented with numpy.

- :func:`imresize`: ``imresize(A, [m n])`` with the default bicubic kernel, antialiased when
  shrinking (MATLAB's ``contributions``: kernel widened by 1/scale, symmetric border indices,
  weights normalised to sum 1), one dimension at a time, the dimension with the smaller scale
  first, and -- as MATLAB's ``imresizemex`` does for integer images -- the intermediate result
  rounded back to the input's class after each pass. Logical images go through uint8 (0/255) and
  come back as ``> 128`` (imresize.m's ``preprocessImage``/``postprocessImage``).
- :func:`imrotate_crop`: ``imrotate(A, angle, 'crop')`` with the default nearest-neighbour
  interpolation. Multiples of 90 degrees are exact for every shape (imrotate.m's own branch: the
  central min(H,W) square rotated in place, zeros elsewhere, for non-square images); other angles
  follow the documented geometry (rotation about the image centre, output grid = input grid).
- :func:`fspecial_disk`: ``fspecial('disk', r)``, MATLAB's piecewise exact pixel/disk areas.
- ``method="bilinear"`` / ``"nearest"`` of :func:`imresize`: MATLAB's triangle (width 2,
  antialiased when shrinking) and box (width 1, never antialiased: pure indexing) kernels. Logical
  images are resized as MATLAB's imresize.m does: ``im2uint8`` (0/255), resized as uint8, ``> 128``.
- :func:`imfilter` (correlation, zero padding, 'same', kernel centre ``floor((size+1)/2)``),
  :func:`roundn`, :func:`stretchlim`, :func:`imadjust`, :func:`bwlabel` (labels in column-major
  order), :func:`bwareaopen`, :func:`imfill_holes`.

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
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _triangle(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``triangle`` kernel (bilinear)."""
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``box`` kernel (nearest): 1 on [-0.5, 0.5)."""
    return ((-0.5 <= x) & (x < 0.5)).astype(np.float64)


#: imresize methods: kernel, width, antialiasing by default when shrinking (imresize.m getMethodInfo).
METHODS = {"bicubic": (_cubic, 4.0, True), "bilinear": (_triangle, 2.0, True), "nearest": (_box, 1.0, False)}


def contributions(
    in_len: int, out_len: int, scale: float, antialias: bool = True, method: str = "bicubic"
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len x P) and 0-based source indices (out_len x P) of MATLAB's imresize.

    Follows imresize.m's ``contributions`` for the kernel of ``method`` (bicubic width 4,
    bilinear 2, nearest 1).
    """
    kernel, kernel_width, _ = METHODS[method]
    if scale < 1 and antialias:

        def h(x: np.ndarray) -> np.ndarray:
            return scale * kernel(scale * x)

        kernel_width = kernel_width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]  # 1-based
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


def _resize_along(
    a: np.ndarray, axis: int, out_len: int, antialias: bool, scale: float | None = None, method: str = "bicubic"
) -> np.ndarray:
    in_len = a.shape[axis]
    scale = out_len / in_len if scale is None else scale
    w, idx = contributions(in_len, out_len, scale, antialias, method)
    if w.shape[1] == 1 and np.all(w == 1):  # pure nearest neighbour: indexing
        return np.take(a, idx[:, 0], axis=axis)
    moved = np.moveaxis(a.astype(np.float64), axis, 0)  # in_len x ...
    gathered = moved[idx]  # out_len x P x ...
    shape = w.shape + (1,) * (moved.ndim - 1)
    out = (gathered * w.reshape(shape)).sum(axis=1)
    return np.moveaxis(_to_class(out, a.dtype), 0, axis)


def _antialias(method: str, antialias: bool | None) -> bool:
    if method not in METHODS:
        raise ValueError(f"imresize method {method!r} is not one of {', '.join(METHODS)}")
    return METHODS[method][2] if antialias is None else antialias


def imresize(
    a: np.ndarray, out_shape: tuple[int, int], antialias: bool | None = None, method: str = "bicubic"
) -> np.ndarray:
    """MATLAB ``imresize(a, [rows cols], method)`` (antialiasing by default except for nearest).

    Logical images: MATLAB's rule (``im2uint8``, resized as uint8, ``> 128``).
    """
    a = np.asarray(a)
    if a.dtype == bool and method != "nearest":
        return imresize((a * np.uint8(255)).astype(np.uint8), out_shape, antialias, method) > 128
    aa = _antialias(method, antialias)
    scales = [out_shape[0] / a.shape[0], out_shape[1] / a.shape[1]]
    order = sorted(range(2), key=lambda d: scales[d])  # stable: rows first on ties, as MATLAB's sort
    out = a
    for d in order:
        if out.shape[d] != out_shape[d] or scales[d] != 1:
            out = _resize_along(out, d, out_shape[d], aa, method=method)
    return out


def imresize_scale(a: np.ndarray, scale: float, antialias: bool | None = None, method: str = "bicubic") -> np.ndarray:
    """MATLAB ``imresize(a, scale, method)``: output ceil(scale * size), kernel positions from
    ``scale`` itself.

    Logical inputs: MATLAB's rule (``im2uint8``, resized as uint8, ``> 128``); nearest keeps them logical.
    """
    a = np.asarray(a)
    if a.dtype == bool and method != "nearest":
        return imresize_scale((a * np.uint8(255)).astype(np.uint8), scale, antialias, method) > 128
    aa = _antialias(method, antialias)
    out = a
    for d in (0, 1):
        out = _resize_along(out, d, int(math.ceil(scale * a.shape[d])), aa, scale, method)
    return out


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
    """MATLAB ``imrotate(a, angle, 'crop')`` with the default nearest-neighbour interpolation.

    Positive angles rotate counter-clockwise; the output has the input's size (H x W [x C]).

    Multiples of 90 degrees take imrotate.m's exact branch (``rem(ang, 90) == 0``), with
    k = mod(floor(angle / 90), 4): k = 0 returns ``a``, k = 2 flips both axes, k = 1 or 3 on a
    square image is ``rot90``. On a non-square image (k = 1 or 3) MATLAB keeps the size by
    rotating only the central min(H, W) square in place: ``imbegin = (max(size) == size) *
    abs(diff(floor(size / 2)))``, i.e. the square starts d = |floor(H/2) - floor(W/2)| rows
    (H > W) or columns (W > H) in, and every pixel outside it is 0. For 49x50: columns 1..49
    (0-based) hold ``rot90`` of ``a[:, 1:50]``, column 0 is 0; for 48x51: columns 1..48, columns
    0, 49 and 50 are 0.

    Other angles follow the documented geometry: each output pixel takes the input pixel nearest
    to its inverse rotation about the image centre ((H+1)/2, (W+1)/2) 1-based, rounding halves up
    (MATLAB ``round`` of a positive 1-based coordinate), 0 where that falls outside. MATLAB's own
    uint8 path hands this to Intel IPP (``imrotatemex``), whose tie and edge rules are not
    documented: outputs can differ where a source coordinate lies exactly half-way between two
    pixels (e.g. the diagonals through the centre of an even-sized patch at 45 degrees).
    """
    a = np.asarray(a)
    if math.remainder(angle, 90.0) == 0:
        k = int(math.floor(angle / 90.0)) % 4
        if k == 0:
            return a.copy()
        if k == 2:
            return np.ascontiguousarray(a[::-1, ::-1])
        h, w = a.shape[:2]
        if h == w:
            return np.ascontiguousarray(np.rot90(a, k, axes=(0, 1)))
        m, d = min(h, w), abs(h // 2 - w // 2)
        r0, c0 = (d, 0) if h > w else (0, d)
        out = np.zeros_like(a)
        out[r0 : r0 + m, c0 : c0 + m] = np.rot90(a[r0 : r0 + m, c0 : c0 + m], k, axes=(0, 1))
        return out
    h, w = a.shape[:2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    phi = angle * math.pi / 180  # imrotate.m: phi = ang*pi/180
    c, s = math.cos(phi), math.sin(phi)
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


def fspecial_disk(radius: float) -> np.ndarray:
    """MATLAB ``fspecial('disk', radius)``: (2 ceil(r - 0.5) + 1)^2 weights summing to 1.

    fspecial.m's algorithm: each pixel's weight is the area of the disk of ``radius`` (centred on
    the middle pixel) inside that pixel's unit square, computed piecewise. In the octant with
    ``maxxy = max(|x|, |y|)`` and ``minxy = min(|x|, |y|)``, the arc crosses the pixel between the
    heights m1 and m2 along the minxy axis; the area is the integral of sqrt(r^2 - t^2) from m1 to
    m2, less the strip before the pixel ((maxxy - 0.5)(m2 - m1)), plus the fully covered part
    (m1 - minxy + 0.5). Pixels wholly inside count 1; the middle pixel is min(pi r^2, pi/2, 1);
    for radii with r^2 < (crad - 0.5)^2 + 0.25 the four axis-end pixels are corrected as
    fspecial.m does. The weights are the areas divided by their sum. Float64, exact to rounding.
    """
    rad = float(radius)
    crad = int(math.ceil(rad - 0.5))
    x, y = np.meshgrid(np.arange(-crad, crad + 1, dtype=np.float64), np.arange(-crad, crad + 1, dtype=np.float64))
    maxxy = np.maximum(np.abs(x), np.abs(y))
    minxy = np.minimum(np.abs(x), np.abs(y))
    r2 = rad * rad

    def sqrt0(v: np.ndarray) -> np.ndarray:  # MATLAB multiplies a complex sqrt by 0 where unused
        return np.sqrt(np.maximum(v, 0.0))

    m1 = np.where(r2 < (maxxy + 0.5) ** 2 + (minxy - 0.5) ** 2, minxy - 0.5, sqrt0(r2 - (maxxy + 0.5) ** 2))
    m2 = np.where(r2 > (maxxy - 0.5) ** 2 + (minxy + 0.5) ** 2, minxy + 0.5, sqrt0(r2 - (maxxy - 0.5) ** 2))
    a1, a2 = np.arcsin(np.clip(m1 / rad, -1, 1)), np.arcsin(np.clip(m2 / rad, -1, 1))
    area = (
        r2 * (0.5 * (a2 - a1) + 0.25 * (np.sin(2 * a2) - np.sin(2 * a1)))
        - (maxxy - 0.5) * (m2 - m1)
        + (m1 - minxy + 0.5)
    )
    crossed = ((r2 < (maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2) & (r2 > (maxxy - 0.5) ** 2 + (minxy - 0.5) ** 2)) | (
        (minxy == 0) & (maxxy - 0.5 < rad) & (maxxy + 0.5 >= rad)
    )
    sgrid = np.where(crossed, area, 0.0)
    sgrid = sgrid + ((maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2 < r2)
    sgrid[crad, crad] = min(math.pi * r2, math.pi / 2)
    if crad > 0 and rad > crad - 0.5 and r2 < (crad - 0.5) ** 2 + 0.25:
        m1s = math.sqrt(r2 - (crad - 0.5) ** 2)
        m1n = m1s / rad
        sg0 = 2 * (r2 * (0.5 * math.asin(m1n) + 0.25 * math.sin(2 * math.asin(m1n))) - m1s * (crad - 0.5))
        n = 2 * crad
        for r, c in ((n, crad), (crad, n), (crad, 0), (0, crad)):
            sgrid[r, c] = sg0
        for r, c in ((n - 1, crad), (crad, n - 1), (crad, 1), (1, crad)):
            sgrid[r, c] -= sg0
    sgrid[crad, crad] = min(sgrid[crad, crad], 1.0)
    return sgrid / sgrid.sum()


def classify_linear(
    sample: np.ndarray, training: np.ndarray, group: np.ndarray, prior: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``[class, err, posterior] = classify(sample, training, group)`` with its default type
    'linear': (class index per sample row, posterior N x G), groups in sorted order.

    classify.m: one multivariate normal per group with the pooled covariance ``R'R``, R from the QR
    factorisation of the group-centred training rows divided by sqrt(n - G); a uniform prior unless
    given; ``D_k = log(prior_k) - (|(x - mean_k) / R|^2 + log det Sigma) / 2``, posterior by Bayes' rule.
    ``sample`` is N x d, ``training`` n x d, ``group`` n labels. Raises ValueError as MATLAB errors
    (no more observations than groups; pooled covariance not positive definite).
    """
    from scipy.linalg import solve_triangular

    training = np.asarray(training, dtype=np.float64)
    sample = np.asarray(sample, dtype=np.float64)
    groups, gindex = np.unique(np.asarray(group), return_inverse=True)
    n, d = training.shape
    g = len(groups)
    if n <= g:
        raise ValueError("classify: TRAINING must have more observations than the number of groups")
    prior = np.full(g, 1.0 / g) if prior is None else np.asarray(prior, dtype=np.float64) / np.sum(prior)
    means = np.stack([training[gindex == k].mean(axis=0) for k in range(g)])
    r = np.linalg.qr(training - means[gindex], mode="r") / math.sqrt(n - g)
    s = np.linalg.svd(r, compute_uv=False)
    if np.any(s <= max(n, d) * np.spacing(s.max())):
        raise ValueError("classify: the pooled covariance matrix of TRAINING must be positive definite")
    log_det = 2 * np.sum(np.log(s))
    dist = np.empty((sample.shape[0], g))
    for k in range(g):
        a = solve_triangular(r, (sample - means[k]).T, trans="T").T  # (x - mean_k) / R
        dist[:, k] = math.log(prior[k]) - 0.5 * (np.sum(a * a, axis=1) + log_det)
    top = dist.max(axis=1, keepdims=True)
    p = np.exp(dist - top)
    return dist.argmax(axis=1), p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- filtering and rounding


def imfilter(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(a, h)``: correlation with zero padding, output the size of ``a``.

    The kernel's centre is ``floor((size(h) + 1) / 2)`` (1-based), so for an even size f the window
    of output (i, j) covers rows i - floor((f-1)/2) .. i + floor(f/2). Float and logical inputs give
    float64 (a logical input's sums are exact counts); integer inputs are rounded and saturated to
    their class, as MATLAB does. Constant kernels are summed with an integral image.
    """
    a = np.asarray(a)
    h = np.asarray(h, dtype=np.float64)
    x = a.astype(np.float64)
    kh, kw = h.shape
    top, left = (kh + 1) // 2 - 1, (kw + 1) // 2 - 1  # rows above / columns left of the centre
    pad = ((top, kh - 1 - top), (left, kw - 1 - left)) + ((0, 0),) * (x.ndim - 2)
    xp = np.pad(x, pad, mode="constant")
    if np.all(h == h.flat[0]):
        sat = np.zeros((xp.shape[0] + 1, xp.shape[1] + 1) + xp.shape[2:])
        sat[1:, 1:] = xp.cumsum(0).cumsum(1)
        out = sat[kh:, kw:] - sat[:-kh, kw:] - sat[kh:, :-kw] + sat[:-kh, :-kw]
        out = out[: x.shape[0], : x.shape[1]] * h.flat[0]
    else:
        from scipy.ndimage import correlate

        w = h.reshape(h.shape + (1,) * (x.ndim - 2))
        full = correlate(xp, w, mode="constant", origin=[-(kh // 2) + top, -(kw // 2) + left] + [0] * (x.ndim - 2))
        out = full[top : top + x.shape[0], left : left + x.shape[1]]
    if np.issubdtype(a.dtype, np.integer):
        return _to_class(out, a.dtype)
    return out


def roundn(x: np.ndarray, n: int) -> np.ndarray:
    """MATLAB (Mapping Toolbox) ``roundn(x, n)``: round to a multiple of 10^n; for n < 0
    ``round(x * 10^-n) / 10^-n`` with halves away from zero."""
    x = np.asarray(x, dtype=np.float64)
    if n < 0:
        p = 10.0 ** (-n)
        return np.sign(x) * np.floor(np.abs(x * p) + 0.5) / p
    p = 10.0**n
    return np.sign(x) * np.floor(np.abs(x / p) + 0.5) * p


def stretchlim(img: np.ndarray, tol: tuple[float, float] = (0.01, 0.99)) -> tuple[float, float]:
    """MATLAB ``stretchlim(img, [low high])`` of one integer channel: the histogram's first bin
    whose cumulative share is > low and first bin whose share is >= high, as fractions of the
    class range ((bin - 1) / (nbins - 1)); (0, 1) for a flat image or low >= high."""
    img = np.asarray(img)
    if not np.issubdtype(img.dtype, np.integer):
        raise ValueError(f"stretchlim here takes integer images (uint8/uint16), not {img.dtype}")
    nbins = 256 if img.dtype == np.uint8 else 65536
    lo, hi = tol
    if lo >= hi:
        return 0.0, 1.0
    counts = np.bincount(img.ravel().astype(np.int64), minlength=nbins)[:nbins]
    cdf = np.cumsum(counts) / counts.sum()
    ilow = int(np.argmax(cdf > lo)) + 1  # 1-based, as find(.., 1, 'first')
    ihigh = int(np.argmax(cdf >= hi)) + 1
    if ilow == ihigh:
        ilow, ihigh = 1, nbins
    return (ilow - 1) / (nbins - 1), (ihigh - 1) / (nbins - 1)


def imadjust(img: np.ndarray, low_high: tuple[float, float]) -> np.ndarray:
    """MATLAB ``imadjust(img, [low high], [])`` of a uint8 channel: values clipped to [low, high]
    (fractions of 255), mapped linearly onto [0, 1], returned as uint8 (``im2uint8``: round(255 x))."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"imadjust here takes uint8 images, not {img.dtype}")
    lo, hi = low_high
    lut = np.linspace(0.0, 1.0, 256)
    lut = (np.clip(lut, lo, hi) - lo) / (hi - lo)
    lut8 = np.floor(lut * 255 + 0.5).astype(np.uint8)
    return lut8[img]


# --------------------------------------------------------------------------- binary morphology


def _structure(conn: int) -> np.ndarray:
    if conn == 8:
        return np.ones((3, 3), dtype=bool)
    if conn == 4:
        return np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    raise ValueError(f"connectivity must be 4 or 8, not {conn}")


def bwlabel(bw: np.ndarray, conn: int = 8) -> tuple[np.ndarray, int]:
    """MATLAB ``[L, n] = bwlabel(bw, conn)``: components numbered 1..n in the column-major order
    of their first pixel (as MATLAB's scan by columns). int32 labels, 0 = background."""
    from scipy.ndimage import label

    lab_t, n = label(np.asarray(bw, dtype=bool).T, structure=_structure(conn))
    return np.ascontiguousarray(lab_t.T).astype(np.int32), int(n)


def bwareaopen(bw: np.ndarray, p: int, conn: int = 8) -> np.ndarray:
    """MATLAB ``bwareaopen(bw, p, conn)``: remove components with fewer than ``p`` pixels (the
    original's ``regionprops(bw, 'Area')`` loop removing ``Area < p`` is the same)."""
    lab, n = bwlabel(bw, conn)
    if n == 0:
        return np.zeros(np.shape(bw), dtype=bool)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= p
    keep[0] = False
    return keep[lab]


def imfill_holes(bw: np.ndarray, conn: int = 4) -> np.ndarray:
    """MATLAB ``imfill(bw, conn, 'holes')`` (default conn 4, the background's connectivity; the
    original's ``bwfill(bw, 'holes')``, 8-connected foreground, is the same): background pixels not
    reachable from the image border through ``conn``-connected background become foreground."""
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(np.asarray(bw, dtype=bool), structure=_structure(conn))


# --------------------------------------------------------------------------- texture (use case 3)
#
# Use case 3's step 1 computes, for every pixel, four GLCM statistics of the haematoxylin channel in
# a 32x32 window: ``nlfilter_aj(c1, [32 32], @(y) graycoprops(graycomatrix(y, 'NumLevels', 8,
# 'symmetric', true)), 4)`` with ``c1`` from the ``colour_deconvolution`` mex. The per-window
# functions below follow MATLAB's documented definitions; :func:`glcm_features` computes the same
# values for every window at once (box sums of the 64 level-pair indicator images).


def im2double(a: np.ndarray) -> np.ndarray:
    """MATLAB ``im2double``: uint8 / 255, uint16 / 65535, logical and floats as float64."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    return a.astype(np.float64)


def gray_levels(a: np.ndarray, num_levels: int = 8, gray_limits: tuple[float, float] | None = None) -> np.ndarray:
    """graycomatrix.m's scaling of an image to levels 1..``num_levels`` (int array, same shape).

    ``SI = floor(slope * I + 1 - slope * low)`` with ``slope = NL / (high - low)``, then clipped to
    [1, NL]; ``gray_limits`` default: the class range ([0 255] for uint8, [0 1] for floats). For uint8
    with the default limits this is ``min(floor(8 v / 255), 7) + 1`` (v = 31 -> 1, 32 -> 2, 255 -> 8),
    computed here in integers: 8 v / 255 is never within 1/255 of an integer unless it is one, so
    the floating-point rounding of MATLAB's ``imlincomb`` cannot change a level.
    """
    a = np.asarray(a)
    if gray_limits is None:
        gray_limits = (0, 255) if a.dtype == np.uint8 else (0, 65535) if a.dtype == np.uint16 else (0.0, 1.0)
    lo, hi = gray_limits
    if hi == lo:
        return np.ones(a.shape, dtype=np.int64)
    if a.dtype == np.uint8 and (lo, hi) == (0, 255):
        lv = (a.astype(np.int64) * num_levels) // 255 + 1
    else:
        slope = num_levels / (hi - lo)
        lv = np.floor(slope * a.astype(np.float64) + (1 - slope * lo)).astype(np.int64)
    return np.clip(lv, 1, num_levels)


def graycomatrix(
    a: np.ndarray,
    num_levels: int = 8,
    offset: tuple[int, int] = (0, 1),
    symmetric: bool = False,
    gray_limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """MATLAB ``graycomatrix(a, 'NumLevels', n, 'Offset', offset, 'Symmetric', s)``: n x n counts (float64).

    Entry (i, j) (0-based level i-1... shown 1-based in MATLAB) counts the pixel pairs (r, c), (r +
    dr, c + dc) inside the image with levels (i, j); ``symmetric`` adds the transpose. Default
    offset [0 1]: each pixel and its right neighbour.
    """
    lv = gray_levels(a, num_levels, gray_limits) - 1
    dr, dc = offset
    h, w = lv.shape
    r0, r1 = max(0, -dr), min(h, h - dr)
    c0, c1 = max(0, -dc), min(w, w - dc)
    first = lv[r0:r1, c0:c1].ravel()
    second = lv[r0 + dr : r1 + dr, c0 + dc : c1 + dc].ravel()
    g = np.bincount(first * num_levels + second, minlength=num_levels * num_levels).reshape(num_levels, num_levels)
    g = g.astype(np.float64)
    return g + g.T if symmetric else g


GLCM_PROPERTIES = ("Contrast", "Correlation", "Energy", "Homogeneity")


def graycoprops(glcm: np.ndarray) -> dict[str, float]:
    """MATLAB ``graycoprops(glcm)``: Contrast, Correlation, Energy, Homogeneity of one n x n GLCM.

    The GLCM is normalised to sum 1 (p); with 1-based indices i, j: Contrast = sum |i-j|^2 p,
    Correlation = sum (i - mu_i)(j - mu_j) p / (sigma_i sigma_j) (mu_i = sum i p, sigma_i =
    sqrt(sum (i - mu_i)^2 p)): NaN when a sigma is 0 (a constant window, MATLAB's 0/0), Energy =
    sum p^2, Homogeneity = sum p / (1 + |i - j|). Checked against MATLAB's documented definitions.
    """
    out = glcm_stats(np.asarray(glcm, dtype=np.float64)[None])
    return {k: float(out[0, i]) for i, k in enumerate(GLCM_PROPERTIES)}


def glcm_stats(glcm: np.ndarray) -> np.ndarray:
    """:func:`graycoprops` of a stack of GLCMs (... x n x n) -> ... x 4 (Contrast, Correlation,
    Energy, Homogeneity), vectorised."""
    g = np.asarray(glcm, dtype=np.float64)
    n = g.shape[-1]
    total = g.sum(axis=(-2, -1), keepdims=True)
    p = np.divide(g, total, out=np.zeros_like(g), where=total != 0)
    i = np.arange(1, n + 1, dtype=np.float64)
    ii, jj = i[:, None], i[None, :]
    d = np.abs(ii - jj)
    contrast = (p * d**2).sum(axis=(-2, -1))
    pi, pj = p.sum(axis=-1), p.sum(axis=-2)  # marginals over rows (index i) and columns (index j)
    mu_i, mu_j = (pi * i).sum(-1), (pj * i).sum(-1)
    s_i = np.sqrt((pi * (i - mu_i[..., None]) ** 2).sum(-1))
    s_j = np.sqrt((pj * (i - mu_j[..., None]) ** 2).sum(-1))
    cov = (p * (ii - mu_i[..., None, None]) * (jj - mu_j[..., None, None])).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / (s_i * s_j)
    corr = np.where(s_i * s_j == 0, np.nan, corr)
    energy = (p * p).sum(axis=(-2, -1))
    homog = (p / (1 + d)).sum(axis=(-2, -1))
    return np.stack([contrast, corr, energy, homog], axis=-1)


def nlfilter_pad(a: np.ndarray, nhood: tuple[int, int], padval: float = 0) -> np.ndarray:
    """nlfilter.m's (and nlfilter_aj.m's) expanded image: ``size(a) + nhood - 1`` filled with
    ``padval`` (0 for uint8, uint16 and logical images), ``a`` placed ``floor((nhood - 1) / 2)``
    rows and columns in. The window of pixel (i, j) (0-based) is then rows i..i+m-1 and columns
    j..j+n-1 of the expanded image: rows i - floor((m-1)/2) .. i + ceil((m-1)/2) of ``a`` (for 32:
    15 above, 16 below), zeros outside."""
    m, n = nhood
    top, left = (m - 1) // 2, (n - 1) // 2
    a = np.asarray(a)
    return np.pad(a, ((top, m - 1 - top), (left, n - 1 - left)), mode="constant", constant_values=padval)


def nlfilter(a: np.ndarray, nhood: tuple[int, int], fun, out_dimension: int = 1) -> np.ndarray:
    """``nlfilter_aj(a, nhood, fun, out_dimension)``: ``fun`` of every pixel's window, one pixel at a
    time as MATLAB's loop (H x W x out_dimension float64). Slow by design: the reference that
    :func:`glcm_features` is tested and benchmarked against."""
    a = np.asarray(a)
    aa = nlfilter_pad(a, nhood)
    m, n = nhood
    out = np.zeros(a.shape[:2] + (out_dimension,))
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = fun(aa[i : i + m, j : j + n])
    return out


def glcm_window_features(window: np.ndarray, num_levels: int = 8) -> np.ndarray:
    """The original's ``get_features`` of one window: [Contrast Correlation Energy Homogeneity] of
    ``graycoprops(graycomatrix(w, 'NumLevels', 8, 'symmetric', true))`` (4 floats, NaN kept)."""
    p = graycoprops(graycomatrix(window, num_levels, symmetric=True))
    return np.array([p[k] for k in GLCM_PROPERTIES])


def glcm_features(a: np.ndarray, window: int = 32, num_levels: int = 8) -> np.ndarray:
    """``nlfilter_aj(a, [window window], get_features, 4)`` for every pixel at once: H x W x 4
    (Contrast, Correlation, Energy, Homogeneity; NaN correlation in constant windows), float64.

    Vectorised: the image is zero-padded as nlfilter does (:func:`nlfilter_pad`), scaled to levels
    (:func:`gray_levels`), and for each of the n x n level pairs the count of horizontal neighbour
    pairs inside each window is a box sum (integral image) of that pair's indicator image; the
    symmetric GLCMs then go through :func:`glcm_stats`. Same values as the per-pixel loop
    :func:`nlfilter` with :func:`glcm_window_features` (tested), up to the order of floating-point sums.
    """
    a = np.asarray(a)
    if a.dtype not in (np.uint8, np.uint16, np.bool_):
        raise ValueError(f"glcm_features takes integer images (as the original's uint8 c1), not {a.dtype}")
    h, w = a.shape
    lv = gray_levels(nlfilter_pad(a, (window, window)), num_levels) - 1  # (h+window-1) x (w+window-1)
    pair = lv[:, :-1] * num_levels + lv[:, 1:]  # horizontal pairs: (h+window-1) x (w+window-2)
    nn = num_levels * num_levels
    counts = np.zeros((nn, h, w))  # counts[a * n + b]: pairs (a, b) in each pixel's window
    sat = np.zeros((pair.shape[0] + 1, pair.shape[1] + 1), dtype=np.int32)
    for code in np.unique(pair):
        sat[1:, 1:] = (pair == code).astype(np.int32).cumsum(0).cumsum(1)
        # window of pixel (i, j): rows i..i+window-1, pair columns j..j+window-2 of ``pair``
        counts[code] = (
            sat[window : window + h, window - 1 : window - 1 + w]
            - sat[:h, window - 1 : window - 1 + w]
            - sat[window : window + h, :w]
            + sat[:h, :w]
        )
    transpose = np.arange(nn).reshape(num_levels, num_levels).T.ravel()
    sym = (counts + counts[transpose]).reshape(nn, h * w)  # symmetric GLCMs, one column per pixel
    return _glcm_stats_columns(sym, num_levels).reshape(h, w, 4)


def _glcm_stats_columns(g: np.ndarray, n: int) -> np.ndarray:
    """:func:`glcm_stats` of symmetric GLCMs stored as columns (n*n x N counts) -> N x 4, with
    matrix products instead of n*n-wide temporaries. Symmetric: the row and column marginals are
    equal, so mu_i = mu_j and sigma_i = sigma_j; sigma is summed as graycoprops sums it, so a
    constant window gives exactly 0 and a NaN correlation."""
    total = g.sum(axis=0)
    p = g / np.where(total == 0, 1, total)  # n*n x N
    i = np.arange(1, n + 1, dtype=np.float64)
    d = np.abs(i[:, None] - i[None, :]).ravel()
    contrast = (d * d) @ p
    homog = (1 / (1 + d)) @ p
    energy = np.einsum("kn,kn->n", p, p)
    p3 = p.reshape(n, n, -1)  # p3[a, b, pixel]
    pi = p3.sum(axis=1)  # n x N marginal over the first index
    mu = i @ pi
    dev = i[:, None] - mu[None, :]  # n x N
    var = (pi * dev * dev).sum(axis=0)
    row = np.einsum("abn,bn->an", p3, dev)  # sum_b p(a, b) (b - mu)
    cov = (dev * row).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var == 0, np.nan, cov / var)
    return np.stack([contrast, corr, energy, homog], axis=-1)


#: The stain vectors of colour_deconvolution.c for "H&E" (Ruifrok & Johnston's GL Haem, GL Eos);
#: the third is the complement computed by the mex.
HE_STAINS = np.array([[0.644211, 0.716556, 0.266844], [0.092789, 0.954111, 0.283111], [0.0, 0.0, 0.0]])


def stain_matrix_q(stains: np.ndarray = HE_STAINS) -> np.ndarray:
    """colour_deconvolution.c's 'q' matrix (3 x 3, row j = stain j's weights for R, G, B log
    densities): the stain vectors normalised, a missing second or third vector completed as the mex
    does, then its closed-form inversion (the same as ``inv`` of the 3x3 cosine matrix)."""
    mod = np.asarray(stains, dtype=np.float64)
    cos = np.zeros((3, 3))
    for i in range(3):
        n = math.sqrt(float((mod[i] ** 2).sum()))
        if n != 0:
            cos[i] = mod[i] / n
    if not cos[1].any():
        cos[1] = [cos[0, 2], cos[0, 0], cos[0, 1]]
    if not cos[2].any():
        for k in range(3):
            s = cos[0, k] ** 2 + cos[1, k] ** 2
            cos[2, k] = 0.0 if s > 1 else math.sqrt(1.0 - s)
    cos[2] = cos[2] / math.sqrt(float((cos[2] ** 2).sum()))
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = cos
    a_ = y1 - x1 * y0 / x0
    v = z1 - x1 * z0 / x0
    c = z2 - y2 * v / a_ + x2 * (v / a_ * y0 / x0 - z0 / x0)
    q = np.zeros(9)
    q[2] = (-x2 / x0 - x2 / a_ * x1 / x0 * y0 / x0 + y2 / a_ * x1 / x0) / c
    q[1] = -q[2] * v / a_ - x1 / (x0 * a_)
    q[0] = 1.0 / x0 - q[1] * y0 / x0 - q[2] * z0 / x0
    q[5] = (-y2 / a_ + x2 / a_ * y0 / x0) / c
    q[4] = -q[5] * v / a_ + 1.0 / a_
    q[3] = -q[4] * y0 / x0 - q[5] * z0 / x0
    q[8] = 1.0 / c
    q[7] = -q[8] * v / a_
    q[6] = -q[7] * y0 / x0 - q[8] * z0 / x0
    return q.reshape(3, 3)


def colour_deconvolution(rgb: np.ndarray, stains: np.ndarray = HE_STAINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``colour_deconvolution(img, 'H&E')`` mex of the original (Misc-Utils/colour_deconvolution.c,
    8-bit path): three uint8 stain images (H x W each; the first is haematoxylin).

    Per pixel: optical density ``OD_c = -255 ln((v_c + 1) / 255) / ln 255`` of each channel, stain j
    ``exp(-(sum_c OD_c q_jc - 255) ln 255 / 255)``, capped at 255 and stored as ``floor(x + 0.5)``.
    White (255, 255, 255) gives 255, black 9, grey 128 gives 168 in the first channel.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"colour_deconvolution takes an H x W x 3 uint8 image, not {rgb.dtype} {rgb.shape}")
    log255 = math.log(255.0)
    od = -(255.0 * np.log((rgb[..., :3].astype(np.float64) + 1) / 255.0)) / log255
    q = stain_matrix_q(stains)
    out = []
    for j in range(3):
        scaled = od[..., 0] * q[j, 0] + od[..., 1] * q[j, 1] + od[..., 2] * q[j, 2]
        v = np.exp(-(scaled - 255.0) * log255 / 255.0)
        v = np.minimum(v, 255.0)
        out.append(np.floor(v + 0.5).astype(np.uint8))
    return out[0], out[1], out[2]


def datasample_weighted(weights_colmajor: np.ndarray, rng: np.random.RandomState) -> int:
    """MATLAB ``datasample(1:N, 1, 'Weights', w)``: one 0-based index drawn with probability
    proportional to ``w`` (non-negative, column-major order as ``val(:)``): the first index whose
    cumulative weight share exceeds a uniform draw (randsample's ``histc`` over the normalised
    cumulative sum). The original is unseeded; ``rng`` seeds it here."""
    c = np.cumsum(weights_colmajor, dtype=np.float64)
    u = rng.random_sample() * c[-1]
    return int(min(np.searchsorted(c, u, side="right"), len(c) - 1))
