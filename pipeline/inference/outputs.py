"""Step 5 outputs: the original's ``_prob.png`` and ``_class.png`` (and a float ``.npy``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.imageio import write_png


def bytescale(a: np.ndarray) -> np.ndarray:
    """scipy.misc.imsave's rescaling: (a - min) * 255 / (max - min), rounded (the original's PNGs)."""
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return (np.clip((a - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


def encode_outputs(prob: np.ndarray, minmax_scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(_prob RGB uint8, _class uint8) of an H x W x C probability map.

    _prob: R = P(class 0), G = P(class 1), B = 0 (P(class 2) with three classes), round(255 p);
    _class: argmax as 0/255 (two classes) or the class index (more classes). ``minmax_scale``
    rescales each image's min..max to 0..255 as the original's scipy.misc.imsave did.
    """
    h, w, c = prob.shape
    rgb = np.zeros((h, w, 3), dtype=np.float64)
    rgb[:, :, :min(c, 3)] = prob[:, :, :3]
    cls = prob.argmax(axis=2)
    if minmax_scale:
        return bytescale(rgb), bytescale(cls.astype(np.float64))
    prob_png = np.floor(rgb * 255 + 0.5).astype(np.uint8)
    cls_png = (cls * 255).astype(np.uint8) if c == 2 else cls.astype(np.uint8)
    return prob_png, cls_png


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Names of the outputs (and the worker claim) for one input image."""
    return {"prob": out_dir / f"{stem}_prob.png", "class": out_dir / f"{stem}_class.png",
            "npy": out_dir / f"{stem}_prob.npy", "lock": out_dir / f".{stem}.lock"}


def is_done(paths: dict[str, Path]) -> bool:
    """Both PNGs present: the image was finished (they are written last, atomically)."""
    return paths["prob"].is_file() and paths["class"].is_file()


def write_outputs(paths: dict[str, Path], prob: np.ndarray, minmax_scale: bool = False, save_npy: bool = False) -> None:
    """Write the .npy (float32, optional), then _class.png, then _prob.png, each atomically."""
    prob_png, cls_png = encode_outputs(prob, minmax_scale)
    if save_npy:
        with atomic.atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, prob.astype(np.float32))
    write_png(paths["class"], cls_png)
    write_png(paths["prob"], prob_png)
