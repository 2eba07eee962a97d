"""Which pixels each finer level computes, and the final segmentation (pure functions).

Two readings of the original, which are not the same cascade (quirk Q6):

- ``python`` (DLLevelTutorial/create_output_image_vector.py, what produced the published outputs):
  the coarser level's ``_prob.png`` (read as float, min-max scaled by scipy.misc.imsave: Q11) is
  resized bilinearly to this level; ``accepted = P2 >= upper``; ``computed = (P1 + P2 >= lower)
  & ~accepted``; computed pixels get the net's output, the others (1, 0, 0), accepted ones
  (0, 0, 1). Quirk Q1 (``probs[:,:,2][thresh_upper] = 0.0`` indexes with the float threshold)
  is :func:`apply_q1`.
- ``matlab`` (get_masks_2thresh_3class.m, the threshold search): on the coarser level's own grid,
  its probabilities zeroed where it did not compute, ``forced = P2 > upper``,
  ``comp_out = (P1 + P2 with forced set to 0) > lower``, ``fixed_out = forced | fixed_in``; both
  binary masks are resized bilinearly (MATLAB's logical rule) to this level: ``computed =
  comp_in & ~fixed_in``, ``accepted = fixed_in``.

Final segmentation (get_masks at level 1, then ``imfill(., 'holes')`` as find_per_level_2thresh.m):
``(P1 > lower(1) where computed) | accepted``.
"""

from __future__ import annotations

import numpy as np

from pipeline.matlab import imfill_holes, imresize

RULES = ("python", "matlab")
Q1_MODES = ("old-numpy", "intended", "refuse")


def apply_q1(probs: np.ndarray, upper: float, accepted: np.ndarray, mode: str = "old-numpy", origin: str = "") -> None:
    """``probs[:,:,2][thresh_upper] = 0.0`` in place (Q1).

    ``old-numpy`` (numpy < 1.12 truncated a float index with a deprecation warning): row
    ``int(upper)`` of channel 2 is zeroed, e.g. row 0 for .16 (row 1 for the base runs' default 1);
    an index past the rows fails as it did then. ``intended``: the accepted pixels' channel 2 is
    zeroed (no effect on which pixels are computed, since accepted ones are excluded anyway).
    ``refuse``: a non-integral threshold is an error, as current numpy raises IndexError.
    """
    if mode not in Q1_MODES:
        raise ValueError(f"--q1 {mode!r} is not one of {', '.join(Q1_MODES)}")
    if mode == "intended":
        probs[:, :, 2][accepted] = 0.0
        return
    if mode == "refuse" and float(upper) != int(upper):
        raise ValueError(
            f"{origin}: Q1: the original indexes probs[:,:,2][{upper}] with the float upper "
            "threshold, which current numpy refuses (IndexError); choose --q1 old-numpy (what "
            "numpy < 1.12 did) or --q1 intended"
        )
    row = int(upper)
    if not -probs.shape[0] <= row < probs.shape[0]:
        raise ValueError(
            f"{origin}: Q1: probs[:,:,2][{upper}] indexes row {row} of a {probs.shape[0]}-row "
            "level; the original failed here (IndexError). Use --q1 intended"
        )
    probs[row, :, 2] = 0.0


def python_pixels(
    probs: np.ndarray, lower: float, upper: float, q1: str = "old-numpy", origin: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """(computed, accepted) of create_output_image_vector.py from the coarser level's upscaled
    probabilities (H x W x 3 float, modified in place by Q1)."""
    accepted = probs[:, :, 2] >= upper
    apply_q1(probs, upper, accepted, q1, origin)
    computed = (probs[:, :, 1] + probs[:, :, 2] >= lower) & ~accepted
    return computed, accepted


def matlab_out(
    io: np.ndarray, computed: np.ndarray, accepted: np.ndarray, lower: float, upper: float
) -> tuple[np.ndarray, np.ndarray]:
    """get_masks at a level above 1: (comp_out, fixed_out) from the level's probabilities (H x W x 3
    as im2double of its PNG), the pixels it computed and those it inherited as accepted."""
    io = np.where(computed[:, :, None], io, 0.0)  # apply_mask(~comp_in), apply_mask(fixed_in)
    forced = io[:, :, 2] > upper
    s = io[:, :, 1] + io[:, :, 2]
    s[forced] = 0
    return s > lower, forced | accepted


def matlab_pixels(comp_out: np.ndarray, fixed_out: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(computed, accepted) of the finer level: both masks resized bilinearly to ``shape``
    (logical: im2uint8, bilinear, > 128), computed = comp_in & ~fixed_in, accepted = fixed_in."""
    comp_in = imresize(comp_out, shape, method="bilinear") if comp_out.shape != tuple(shape) else comp_out
    fixed_in = imresize(fixed_out, shape, method="bilinear") if fixed_out.shape != tuple(shape) else fixed_out
    return comp_in & ~fixed_in, fixed_in


def final_mask(
    p1: np.ndarray, computed: np.ndarray, accepted: np.ndarray, lower1: float, fill: bool = True
) -> np.ndarray:
    """Level 1's segmentation: ``(P1 > lower(1) where computed) | accepted``, holes filled."""
    seg = ((p1 > lower1) & computed) | accepted
    return imfill_holes(seg) if fill else seg
