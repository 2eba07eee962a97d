"""Step 5 outputs: the original's ``_prob.png`` and ``_class.png`` (and a float ``.npy``), and
how later steps read them back.

The original saved both PNGs with ``scipy.misc.imsave`` (common/step5_create_output_images_kfold.py
lines 108-109), which rescales each image's min..max to 0..255 (scipy.misc.bytescale): that is the
default here. ``round(255 p)`` (probabilities kept on an absolute scale) is the named alternative
(``infer --png-scale round``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.imageio import write_png

log = logging.getLogger(__name__)

#: How ``_prob.png``/``_class.png`` map values to 0..255: the original's per-image min-max
#: rescaling (default), or round(255 p).
PNG_SCALES = ("minmax", "round")
#: What scores read back: the PNGs (default, as the original's later steps did) or the float .npy.
SCORE_SOURCES = ("png", "npy")


def bytescale(a: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale as scipy.misc.imsave applied it to float images (scipy's last pilutil):
    ``((a - min) * 255 / (max - min)).clip(0, 255) + 0.5`` truncated to uint8; a constant image
    (max == min) uses a range of 1, so it becomes all 0. (Older scipy releases added 0.4999
    instead of clipping and adding 0.5: different only within 1e-4 of a half level.)"""
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / (hi - lo) if hi > lo else 255.0
    return (np.clip((a - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


def encode_outputs(prob: np.ndarray, minmax_scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(_prob RGB uint8, _class uint8) of an H x W x C probability map.

    _prob: R = P(class 0), G = P(class 1), B = 0 (P(class 2) with three classes); _class: argmax.
    ``minmax_scale`` (default, the original): scipy.misc.imsave's per-image rescaling, over all three
    channels of _prob at once (B = 0 and the never-computed first row/column hold the minimum 0, so
    _prob = round(255 p / max p)) and over the class map (0/255 for two classes). Otherwise
    _prob = round(255 p) and _class = 0/255 (two classes) or the class index (more classes).
    """
    h, w, c = prob.shape
    rgb = np.zeros((h, w, 3), dtype=np.float64)
    rgb[:, :, : min(c, 3)] = prob[:, :, :3]
    cls = prob.argmax(axis=2)
    if minmax_scale:
        if cls.size and cls.min() == cls.max() and cls.max() > 0:
            log.warning(
                "class map is constant (class %d everywhere): scipy.misc.imsave's min-max scaling, "
                "reproduced here, writes it as all 0",
                int(cls.max()),
            )
        return bytescale(rgb), bytescale(cls.astype(np.float64))
    prob_png = np.floor(rgb * 255 + 0.5).astype(np.uint8)
    cls_png = (cls * 255).astype(np.uint8) if c == 2 else cls.astype(np.uint8)
    return prob_png, cls_png


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Names of the outputs (and the worker claim) for one input image."""
    return {
        "prob": out_dir / f"{stem}_prob.png",
        "class": out_dir / f"{stem}_class.png",
        "npy": out_dir / f"{stem}_prob.npy",
        "lock": out_dir / f".{stem}.lock",
    }


def is_done(paths: dict[str, Path]) -> bool:
    """Both PNGs present: the image was finished (they are written last, atomically)."""
    return paths["prob"].is_file() and paths["class"].is_file()


def write_outputs(paths: dict[str, Path], prob: np.ndarray, minmax_scale: bool = True, save_npy: bool = False) -> None:
    """Write the .npy (float32, optional), then _class.png, then _prob.png, each atomically."""
    prob_png, cls_png = encode_outputs(prob, minmax_scale)
    if save_npy:
        with atomic.atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, prob.astype(np.float32))
    write_png(paths["class"], cls_png)
    write_png(paths["prob"], prob_png)


def read_maps(out_dir: Path, stem: str, source: str = "png") -> tuple[np.ndarray, np.ndarray]:
    """(P(class 1), class-1 map) of one image's outputs, both H x W, as a later step reads them.

    ``png`` (default): ``double(io(:,:,2))/255`` of ``_prob.png`` (4-lymphocyte/
    step5_identify_peak_in_probs.m line 4; with the default min-max PNGs these are P / max P,
    quantised to 1/255) and ``_class.png`` non-zero. ``npy``: the float map ``_prob.npy`` (float64
    P(class 1) and argmax == 1); written only with ``save_npy``. Raises FileNotFoundError naming
    the missing file.
    """
    from PIL import Image

    paths = output_paths(Path(out_dir), stem)
    if source == "npy":
        if not paths["npy"].is_file():
            raise FileNotFoundError(f"{paths['npy']}: no float map (written by infer --save-npy)")
        prob = np.load(paths["npy"])
        return prob[..., 1].astype(np.float64), prob.argmax(axis=2) == 1
    if source != "png":
        raise ValueError(f"score source {source!r} is not one of {SCORE_SOURCES}")
    for key in ("prob", "class"):
        if not paths[key].is_file():
            raise FileNotFoundError(f"{paths[key]}: step-5 output missing")
    with Image.open(paths["prob"]) as im:
        green = np.asarray(im.convert("RGB"))[:, :, 1].astype(np.float64) / 255.0
    with Image.open(paths["class"]) as im:
        cls = np.asarray(im.convert("L")) > 0
    return green, cls
