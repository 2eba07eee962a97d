"""Regression of probability maps against a released model (image use cases), pure comparison
plus the run that computes both sides with the same step-5 engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pipeline import atomic, inference
from pipeline.report.mdtable import document, fixed, pipe_table

log = logging.getLogger(__name__)


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice coefficient of two boolean masks (None when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum() + b.sum())
    return None if s == 0 else 2.0 * int((a & b).sum()) / s


def compare_maps(
    rel_model: Path,
    rel_mean: Path,
    images: list[Path],
    out_dir: Path,
    ours: list[Path],
    ours_means: list[Path],
    magnification: float,
    label: str = "",
    mode: str = "fcn",
    stride: int = 1,
    gpu: bool = False,
) -> dict:
    """Probability maps of the released model and of each of ``ours`` on the same images (resized by
    ``magnification``, the use case's): mean |dP(class 1)| and Dice of the class maps per image,
    over the pixels the original computes. Writes ``maps.json`` and ``maps.md`` into ``out_dir``."""
    for f in (rel_model, rel_mean):
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: released file missing (python -m pipeline fetch-released)")
    if len(ours_means) != len(ours):
        raise ValueError("give one --ours-mean per --ours model for the image use cases")
    out_dir = Path(out_dir)
    opts = inference.Options(stride=stride)
    engines = {"released": inference.make_engine(mode, rel_model, rel_mean, gpu=gpu, net_dir=out_dir)}
    for m, mean in zip(ours, ours_means):
        engines[f"ours {Path(m).name}"] = inference.make_engine(mode, m, mean, gpu=gpu, net_dir=out_dir)
    rows = []
    for img_path in images:
        img = inference.load_resized(img_path, magnification)
        maps = {k: e.run(img, opts) for k, e in engines.items()}
        rr = inference.computed_coords(img.shape[0], stride)
        cc = inference.computed_coords(img.shape[1], stride)
        ref = maps["released"][np.ix_(rr, cc)]
        for name, m in maps.items():
            if name == "released":
                continue
            sub = m[np.ix_(rr, cc)]
            rows.append(
                {
                    "image": Path(img_path).name,
                    "model": name,
                    "mean_abs_dp": float(np.abs(sub[..., 1] - ref[..., 1]).mean()),
                    "dice": dice(sub.argmax(2) == 1, ref.argmax(2) == 1),
                }
            )
    report = {"usecase": label, "mode": mode, "released": str(rel_model), "rows": rows}
    atomic.write_text(out_dir / "maps.json", json.dumps(report, indent=1))
    atomic.write_text(out_dir / "maps.md", maps_markdown(report))
    return report


def maps_markdown(report: dict) -> str:
    """The table of ``report`` (``maps.json``): per image and model, mean |dP| and Dice against the released model."""
    rows = [[r["image"], r["model"], fixed(r["mean_abs_dp"], 5), fixed(r["dice"])] for r in report["rows"]]
    return document(
        f"{report['usecase']}, mode {report['mode']}: maps compared with {Path(report['released']).name}",
        pipe_table(["image", "model", "mean abs dP", "Dice of class maps"], rows),
    )
