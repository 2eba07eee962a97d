"""Step 5 over many images: claim, load, compute, write; many workers may share one output folder."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from pipeline.claims import claimed
from pipeline.inference.engines.base import Engine, Options
from pipeline.inference.geometry import computed_coords, fill_strided
from pipeline.inference.images import load_resized
from pipeline.inference.outputs import is_done, output_paths, write_outputs

log = logging.getLogger(__name__)


def infer_images(images: list[Path], engine: Engine, out_dir: Path, opts: Options, resize: float = 1.0,
                 save_npy: bool = False, minmax_scale: bool = False, show_progress: bool = True) -> dict:
    """Process images one by one, claiming each atomically so many workers can share ``out_dir``.

    Each image is resized by ``resize`` (the use case's magnification) before the engine runs.
    Finished images (both PNGs present) are skipped; a crash leaves no partial output under the
    final names. Returns {"computed": [...], "skipped": [...], "seconds": s, "pixels": n}.
    """
    from tqdm import tqdm
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, skipped, pixels = [], [], 0
    t0 = time.perf_counter()
    for img_path in tqdm(images, desc=f"infer ({engine.name})", unit="image", disable=not show_progress):
        paths = output_paths(out_dir, img_path.stem)
        with claimed(paths["lock"], done=is_done(paths)) as mine:
            if not mine:
                skipped.append(str(img_path))
                continue
            img = load_resized(img_path, resize)
            prob = engine.run(img, opts)
            if opts.all_pixels and opts.stride > 1:
                prob = fill_strided(prob, computed_coords(img.shape[0], opts.stride, True),
                                    computed_coords(img.shape[1], opts.stride, True))
            write_outputs(paths, prob, minmax_scale=minmax_scale, save_npy=save_npy)
            pixels += int(np.prod(img.shape[:2]))
            done.append(str(img_path))
    return {"computed": done, "skipped": skipped, "seconds": round(time.perf_counter() - t0, 3), "pixels": pixels}
