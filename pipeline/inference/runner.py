"""Step 5 over many images: claim, load, compute, write; many workers may share one output folder."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.claims import Claim
from pipeline.inference.engines.base import Engine, Options
from pipeline.inference.geometry import computed_coords, fill_strided
from pipeline.inference.images import load_resized
from pipeline.inference.outputs import is_done, output_paths, write_outputs

log = logging.getLogger(__name__)


RECORD = ".outputs.json"      #: per output folder: how its PNGs were encoded


def check_png_scale(out_dir: Path, minmax_scale: bool) -> None:
    """Refuse to add PNGs of one scale to a folder holding PNGs of the other.

    The first run records ``{"png_scale": "minmax"|"round"}`` in ``OUT/.outputs.json``; a later run
    asking the other scale raises ValueError naming the folder, and so does a folder that holds
    finished ``_prob.png`` files but no record (written before the scale was recorded, when the
    default was round(255 p)): finished outputs are never reused under other options.
    """
    scale = "minmax" if minmax_scale else "round"
    rec = Path(out_dir) / RECORD
    if rec.is_file():
        old = json.loads(rec.read_text()).get("png_scale")
        if old != scale:
            raise ValueError(f"{out_dir}: holds step-5 PNGs written with --png-scale {old}, this run asks {scale}; "
                             "use another output folder or remove those outputs")
        return
    if any(Path(out_dir).glob("*_prob.png")):
        raise ValueError(f"{out_dir}: holds _prob.png files of unknown PNG scaling (written before {RECORD} "
                         "existed, when round(255 p) was the default); use another output folder or remove them")
    atomic.write_text(rec, json.dumps({"png_scale": scale}) + "\n")


def infer_images(images: list[Path], engine: Engine, out_dir: Path, opts: Options, resize: float = 1.0,
                 save_npy: bool = False, minmax_scale: bool = True, show_progress: bool = True) -> dict:
    """Process images one by one, claiming each atomically so many workers can share ``out_dir``.

    Each image is resized by ``resize`` (the use case's magnification) before the engine runs.
    ``minmax_scale`` (default, the original's scipy.misc.imsave) rescales each PNG's min..max to
    0..255; False writes round(255 p).
    Finished images (both PNGs present) are skipped; a crash leaves no partial output under the
    final names. Returns {"computed": [...], "skipped": [...], "seconds": s, "pixels": n}.
    """
    from tqdm import tqdm
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_png_scale(out_dir, minmax_scale)
    done, skipped, pixels = [], [], 0
    t0 = time.perf_counter()
    for img_path in tqdm(images, desc=f"infer ({engine.name})", unit="image", disable=not show_progress):
        paths = output_paths(out_dir, img_path.stem)
        if is_done(paths):
            skipped.append(str(img_path))
            continue
        claim = Claim(paths["lock"])
        if not claim.acquire():
            skipped.append(str(img_path))
            continue
        try:
            img = load_resized(img_path, resize)
            prob = engine.run(img, opts)
            if opts.all_pixels and opts.stride > 1:
                prob = fill_strided(prob, computed_coords(img.shape[0], opts.stride, True),
                                    computed_coords(img.shape[1], opts.stride, True))
            write_outputs(paths, prob, minmax_scale=minmax_scale, save_npy=save_npy)
            pixels += int(np.prod(img.shape[:2]))
            done.append(str(img_path))
        finally:
            claim.release()
    return {"computed": done, "skipped": skipped, "seconds": round(time.perf_counter() - t0, 3), "pixels": pixels}
