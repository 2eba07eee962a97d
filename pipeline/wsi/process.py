"""Reader -> splitter -> engine for the tiles of one slide (TIAToolbox's and MONAI's split).

Each tile is read with its context margin at the plan's level, resampled to the model's
magnification in global coordinates (:mod:`pipeline.wsi.resample`), run through a step-5 engine,
cut back to the tile and stored (:mod:`pipeline.wsi.store`). Workers sharing a slide claim tiles, so
any number of processes, or job-array tasks given :func:`pipeline.wsi.tiling.part` of the tile list,
can work on one slide; finished tiles are skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from pipeline.inference import Engine, Options
from pipeline.wsi.plan import Plan
from pipeline.wsi.resample import level_box, resample
from pipeline.wsi.slide import Slide
from pipeline.wsi.store import TileStore
from pipeline.wsi.tiling import Tile, with_context

log = logging.getLogger(__name__)


def read_model_pixels(slide: Slide, plan: Plan, box: tuple[int, int, int, int]) -> np.ndarray:
    """Model-magnification pixels ``box`` = (y0, y1, x0, x1) of the slide: H x W x 3 float32 in [0, 1]."""
    sc = plan.scale
    level_shape = slide.level_shapes[sc.level]
    lb = level_box(box, sc.factor, level_shape)
    region = slide.read(sc.level, lb)
    return resample(region, (lb[0], lb[2]), sc.factor, box, level_shape)


def compute_tile(slide: Slide, plan: Plan, engine: Engine, tile: Tile, batch: int = 2048) -> np.ndarray:
    """The tile's probabilities (h x w x classes float32): the engine on the tile and its context.

    The slide's first row and column stay 0 unless ``all_pixels`` (the original never computed them).
    """
    if engine.name != plan.settings.mode:
        raise ValueError(f"the plan was made for the {plan.settings.mode} engine, not {engine.name}")
    box = with_context(tile, plan.context, plan.scale.shape)
    prob = engine.run(read_model_pixels(slide, plan, box), Options(all_pixels=True, batch=batch))
    out = np.array(prob[tile.y0 - box[0] : tile.y1 - box[0], tile.x0 - box[2] : tile.x1 - box[2]], dtype=np.float32)
    if not plan.settings.all_pixels:
        if tile.y0 == 0:
            out[0] = 0
        if tile.x0 == 0:
            out[:, 0] = 0
    return out


def process_tiles(
    plan: Plan,
    engine: Engine,
    tiles: list[Tile] | None = None,
    batch: int = 2048,
    on_tile: Callable[[Tile], None] | None = None,
) -> dict:
    """Compute ``tiles`` (default: all of the plan's) that are not finished and not claimed by another worker.

    Returns {"computed": n, "done_before": n, "claimed_elsewhere": n, "pixels": n, "seconds": s}.
    ``on_tile`` is called after each tile this worker finishes (progress).
    """
    store = TileStore(plan.tiles_dir)
    todo = plan.tiles if tiles is None else tiles
    done = {t.name for t in store.done(todo)}
    stats = {"computed": 0, "done_before": len(done), "claimed_elsewhere": 0, "pixels": 0, "seconds": 0.0}
    t0 = time.perf_counter()
    with Slide(plan.slide) as slide:
        for tile in todo:
            if tile.name in done or store.is_done(tile):
                continue
            claim = store.claim(tile)
            if not claim.acquire():
                stats["claimed_elsewhere"] += 1
                continue
            try:
                if store.is_done(tile):  # finished by another worker since the listing
                    continue
                prob = compute_tile(slide, plan, engine, tile, batch)
                if not claim.still_held():  # judged dead and taken over meanwhile: theirs now
                    stats["claimed_elsewhere"] += 1
                    continue
                store.save(tile, prob)
            finally:
                claim.release()
            stats["computed"] += 1
            stats["pixels"] += tile.pixels
            if on_tile:
                on_tile(tile)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    return stats
