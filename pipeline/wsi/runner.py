"""A whole slide end to end: plan, tiles (N worker processes, or one part of a job array), merge.

``OUT/<stem>/`` holds ``plan.json``, ``thumbnail.png``, ``<stem>_tissue.png``, ``tiles/`` (one
``.npy`` per finished tile) and, once every tile is finished, ``<stem>_prob.tif``,
``<stem>_class.tif``, ``<stem>_overlay.png`` and ``summary.json`` (written last: the slide is done).
Whoever finishes the last tile merges (claim ``.merge.lock``); a rerun resumes from the finished
tiles, and merges when they are all there.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from pipeline import atomic
from pipeline.claims import Claim, clear_dead_in
from pipeline.imageio import write_png
from pipeline.inference import make_engine
from pipeline.wsi import writer
from pipeline.wsi.plan import Plan, Settings, make_plan
from pipeline.wsi.process import process_tiles
from pipeline.wsi.slide import Slide
from pipeline.wsi.store import TileStore
from pipeline.wsi.tiling import part as part_of

log = logging.getLogger(__name__)

#: Longest side of the overlay PNG, pixels (the slide at a whole downsample of the model's magnification).
OVERLAY_SIDE = 2048


def slide_folder(out: Path, slide: Path) -> Path:
    """Where a slide's plan, tiles and outputs go: ``OUT/<stem>``."""
    return Path(out) / Path(slide).stem


def output_paths(plan: Plan) -> dict[str, Path]:
    f, s = plan.folder, plan.stem
    return {
        "prob": f / f"{s}_prob.tif",
        "class": f / f"{s}_class.tif",
        "overlay": f / f"{s}_overlay.png",
        "tissue": f / f"{s}_tissue.png",
        "summary": f / "summary.json",
    }


def merge(plan: Plan) -> dict | None:
    """Write the TIFFs and the overlay from the finished tiles, then ``summary.json``; None when some
    tile is not finished or another worker is merging."""
    store = TileStore(plan.tiles_dir)
    if len(store.done(plan.tiles)) < len(plan.tiles):
        return None
    paths = output_paths(plan)
    claim = Claim(plan.folder / ".merge.lock")
    if not claim.acquire():
        return None
    try:
        if paths["summary"].is_file():
            return json.loads(paths["summary"].read_text())
        t0 = time.perf_counter()
        by_rc = {(t.row, t.col): t for t in plan.tiles}

        def gather(rows, cols):
            return writer.gather(by_rc, store, plan.settings.tile, rows, cols, plan.n_classes)

        levels = {}
        for which, samples in (("class", 1), ("prob", 3)):
            levels[which] = writer.write_pyramid(
                paths[which],
                plan.scale.shape,
                samples,
                lambda rows, cols, which=which: writer.encode_strip(gather(rows, cols), which),
                plan.scale.model_mpp,
            )
        h, w = plan.scale.shape
        with Slide(plan.slide) as slide:  # the overlay's background: at most OVERLAY_SIDE pixels a side
            thumb, ds = slide.read_downsampled(math.ceil(max(h, w) / OVERLAY_SIDE) * plan.scale.downsample)
        k = ds / plan.scale.downsample  # model pixels per overlay pixel
        rows = np.minimum((np.arange(thumb.shape[0]) + 0.5) * k, h - 1).astype(np.int64)
        cols = np.minimum((np.arange(thumb.shape[1]) + 0.5) * k, w - 1).astype(np.int64)
        write_png(paths["overlay"], writer.overlay(thumb, gather(rows, cols)))
        summary = {
            "slide": str(plan.slide),
            "outputs": {k: str(v) for k, v in paths.items() if k != "summary"},
            "model_objective": plan.scale.model_objective,
            "slide_objective": plan.scale.slide_objective,
            "objective_from": plan.scale.source,
            "level": plan.scale.level,
            "factor": plan.scale.factor,
            "model_mpp": round(plan.scale.model_mpp, 6),
            "shape": list(plan.scale.shape),
            "tiles": len(plan.tiles),
            "grid_tiles": plan.grid_tiles,
            "skipped_share": round(1 - len(plan.tiles) / plan.grid_tiles, 4),
            "computed_pixels": int(sum(t.pixels for t in plan.tiles)),
            "pyramid": levels,
            "merge_seconds": round(time.perf_counter() - t0, 3),
            "mode": plan.settings.mode,
        }
        atomic.write_text(paths["summary"], json.dumps(summary, indent=1) + "\n")
        clear_dead_in(store.folder, finished=lambda lock: True)  # every tile is finished here
        return summary
    finally:
        claim.release()


def blas_threads(workers: int) -> int:
    """BLAS threads per worker so that ``workers`` processes share this machine's cores without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker(
    plan_folder: str, slide: str, engine_spec: dict, batch: int, threads: int, part: tuple[int, int] | None
) -> None:
    """A spawned worker process: its own engine, claimed tiles (of ``part``) until none is left."""
    logging.basicConfig(level=logging.WARNING)
    from threadpoolctl import threadpool_limits

    plan = Plan.from_json(json.loads((Path(plan_folder) / "plan.json").read_text()), Path(plan_folder))
    plan.slide = Path(slide)
    engine = make_engine(**engine_spec)
    with threadpool_limits(limits=threads, user_api="blas"):
        stats = process_tiles(plan, engine, None if part is None else part_of(plan.tiles, *part), batch=batch)
    log.debug("worker %d: %s", os.getpid(), stats)


def infer_slide(
    slide: Path,
    out: Path,
    settings: Settings,
    engine_spec: dict,
    workers: int = 1,
    part: tuple[int, int] | None = None,
    batch: int = 2048,
    show_progress: bool = True,
    plan_only: bool = False,
    force: bool = False,
) -> dict:
    """One slide: plan it, compute its tiles, merge when all are finished; returns a summary.

    ``engine_spec``: the keyword arguments of :func:`pipeline.inference.make_engine` (mode, model,
    mean, deploy, dropout, gpu, net_dir); ``settings.mode`` must equal its mode. ``workers``: processes
    on this machine sharing the tiles (this one and ``workers - 1`` spawned ones), each with
    :func:`blas_threads` BLAS threads (one worker keeps the BLAS default). ``part=(i, n)``:
    only part i (0-based) of n of the tile list (a job-array task), claimed all the same. The
    summary has "state": "done", "planned" or "incomplete" (tiles left: other parts, other workers).
    ``force``: a folder made with other options or inputs is emptied and computed again (default: refused).
    """
    from tqdm import tqdm

    if engine_spec["mode"] != settings.mode:
        raise ValueError(f"engine mode {engine_spec['mode']} differs from the settings' {settings.mode}")
    folder = slide_folder(out, slide)
    plan = make_plan(
        slide,
        folder,
        settings,
        engine_spec["model"],
        engine_spec["mean"],
        engine_spec.get("deploy"),
        engine_spec.get("dropout", False),
        force=force,
    )
    paths = output_paths(plan)
    base = {"slide": str(slide), "folder": str(folder), "tiles": len(plan.tiles), "grid_tiles": plan.grid_tiles}
    if paths["summary"].is_file():
        return {**json.loads(paths["summary"].read_text()), **base, "state": "done", "computed_now": 0}
    if plan_only:
        return {
            **base,
            "state": "planned",
            "shape": list(plan.scale.shape),
            "level": plan.scale.level,
            "factor": plan.scale.factor,
        }
    mine = plan.tiles if part is None else part_of(plan.tiles, *part)
    store = TileStore(plan.tiles_dir)
    before = {t.name for t in store.done(plan.tiles)}
    engine = make_engine(**engine_spec)  # renders the nets once, before any other worker starts
    procs = []
    threads = blas_threads(workers)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        for _ in range(workers - 1):
            p = ctx.Process(
                target=_worker, args=(str(folder), str(plan.slide), engine_spec, batch, threads, part), daemon=True
            )
            p.start()
            procs.append(p)
    bar = tqdm(
        total=len(plan.tiles),
        initial=len(before),
        unit="tile",
        disable=not show_progress,
        desc=f"{plan.stem} ({settings.mode}, {workers} worker{'s' if workers > 1 else ''})",
    )

    def refresh(_tile=None) -> None:
        bar.n = len(store.done(plan.tiles))
        bar.refresh()

    t0 = time.perf_counter()
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=threads if workers > 1 else None, user_api="blas"):
            stats = process_tiles(plan, engine, mine, batch=batch, on_tile=refresh)
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            refresh()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        bar.close()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} worker process(es) failed (exit codes {failed}); rerun to resume")
    seconds = time.perf_counter() - t0
    now = [t for t in store.done(plan.tiles) if t.name not in before]
    summary = merge(plan)
    run = {
        "computed_now": len(now),
        "pixels_now": sum(t.pixels for t in now),
        "computed_by_this_process": stats["computed"],
        "done_before": len(before),
        "finished": len(before) + len(now),
        "seconds": round(seconds, 3),
        "workers": workers,
        "part": None if part is None else f"{part[0]}/{part[1]}",
    }
    if summary is None:
        return {**base, **run, "state": "incomplete"}
    return {**summary, **base, **run, "state": "done"}
