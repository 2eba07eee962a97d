"""Use case 3's pixel features and pixel classifier (step1:55-82), pure functions.

Features of a padded 0.25x image (H x W x 3 uint8): R, G, B as ``im2double`` and the four GLCM
statistics (Contrast, Correlation, Energy, Homogeneity) of the haematoxylin channel ``c1`` of
``colour_deconvolution(io, 'H&E')`` in the 32x32 window of ``nlfilter_aj`` (zero padding); NaN
(the correlation of a constant window) -> 0. Pixels in column-major order, as MATLAB's ``reshape``.

The classifier: ``[class, err, post] = classify(ilfr, ilfr(ind, :), io_mask(ind))`` with MATLAB's
default type 'linear' (pooled covariance / (n - 2), equal priors; :func:`pipeline.matlab.classify_linear`)
on 12,000 pixels drawn by ``randperm`` over the whole padded image. The tutorial calls it naive
Bayes: ``classifier="nb"`` (scikit-learn's GaussianNB) is that reading.
"""

from __future__ import annotations

import numpy as np

from pipeline.matlab import classify_linear, colour_deconvolution, glcm_features, im2double

CLASSIFIERS = ("lda", "nb")
CLASSIFIER_PIXELS = ("padded", "image")


def texture(io: np.ndarray, window: int = 32, levels: int = 8) -> np.ndarray:
    """``ilfo``: H x W x 4 GLCM statistics of the haematoxylin channel of ``io`` (uint8 RGB)."""
    c1 = colour_deconvolution(io)[0]
    return glcm_features(c1, window, levels)


def pixel_features(io: np.ndarray, window: int = 32, levels: int = 8) -> np.ndarray:
    """``ilfr``: (H*W) x 7 features [R G B Contrast Correlation Energy Homogeneity] in column-major
    pixel order, NaN -> 0 (step1:73-76 as intended: ``cat(3, io, ilfo)``)."""
    ilf = np.concatenate([im2double(io[..., :3]), texture(io, window, levels)], axis=2)
    h, w, d = ilf.shape
    x = ilf.transpose(1, 0, 2).reshape(h * w, d)
    return np.nan_to_num(x, nan=0.0)


def training_pixels(
    shape: tuple[int, int], n: int, rng: np.random.RandomState, where: str = "padded", pad: int = 32
) -> np.ndarray:
    """Column-major indices of the classifier's training pixels: ``randperm(H*W)(1:n)`` over the
    padded image (default, step1:79-80), or over the unpadded image only (``where="image"``).
    ValueError (MATLAB's "Index exceeds matrix dimensions") when fewer than ``n`` pixels exist."""
    h, w = shape
    if where == "padded":
        pool = np.arange(h * w)
    elif where == "image":
        rr, cc = np.mgrid[pad : h - pad, pad : w - pad]
        pool = np.sort((cc * h + rr).ravel())
    else:
        raise ValueError(f"classifier pixels {where!r} is not one of {CLASSIFIER_PIXELS}")
    if len(pool) < n:
        raise ValueError(f"Index exceeds matrix dimensions: {n} classifier pixels asked, the image has {len(pool)}")
    return pool[rng.permutation(len(pool))[:n]]


def posterior(x: np.ndarray, train: np.ndarray, labels: np.ndarray, classifier: str = "lda") -> np.ndarray:
    """``post``: N x 2 posteriors (column 0 = not tubule, 1 = tubule: the sorted groups false, true)
    of every row of ``x`` from the rows ``train`` labelled ``labels`` (bool).

    ValueError when the training pixels hold one class (the original's ``post(:, 2)`` then fails) or
    the pooled covariance is singular (``classify`` raises; the original skipped the image)."""
    labels = np.asarray(labels, bool)
    if labels.all() or not labels.any():
        raise ValueError(
            f"the {len(labels)} classifier pixels are all {'tubule' if labels.all() else 'non-tubule'}; "
            "the original's post(:,2) has no second column"
        )
    if classifier == "lda":
        return classify_linear(x, x[train], labels)[1]
    if classifier == "nb":
        from sklearn.naive_bayes import GaussianNB

        return GaussianNB().fit(x[train], labels).predict_proba(x)
    raise ValueError(f"classifier {classifier!r} is not one of {CLASSIFIERS}")
