"""Step 5 over many images: claim, load, compute, write; many workers may share one output folder."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from pipeline import claims
from pipeline.claims import Claim
from pipeline.inference.engines.base import Engine, Options
from pipeline.inference.geometry import computed_coords, fill_strided
from pipeline.inference.images import load_resized
from pipeline.inference.outputs import (
    RECORD,
    OutputRecord,
    is_done,
    output_paths,
    read_record,
    write_outputs,
    write_record,
)

log = logging.getLogger(__name__)


#: What ``force`` removes from a folder whose maps were made under another record: the maps and
#: their exports (``python -m pipeline export``); nothing else of the folder.
MADE_FROM_MAPS = ("*_prob.png", "*_class.png", "*_prob.npy", "*.geojson")


def clear_maps(out_dir: Path) -> int:
    """Remove the maps (and their exports) of ``out_dir``; the number of files removed."""
    n = 0
    for pattern in MADE_FROM_MAPS:
        for f in Path(out_dir).glob(pattern):
            f.unlink(missing_ok=True)
            n += 1
    return n


def check_record(out_dir: Path, record: OutputRecord, force: bool = False) -> None:
    """Refuse to add maps to a folder holding maps made another way; record how this run makes them.

    The first run writes ``OUT/.outputs.json`` (:class:`OutputRecord`: engine, stride, all-pixels,
    resize, PNG scale, model and mean sha256, dropout). A later run whose record differs in any of
    them raises ValueError naming the folder and the options (``--stride 2`` there, ``--stride 1``
    now), and so do a folder holding finished ``_prob.png`` files but no record, or a record from
    before the model and options were recorded (only the PNG scale): finished maps are never reused
    under other options, so a rerun never silently skips images. With ``force`` those maps (and
    their GeoJSON exports) are removed instead and computed again under the new record.
    """
    rec = Path(out_dir) / RECORD
    problem = None
    if rec.is_file():
        old = read_record(out_dir)
        if old.engine is None:
            problem = (
                f"{out_dir}: holds step-5 maps recorded before their model and options were (only --png-scale "
                f"{old.png_scale}), so they may have been made another way"
            )
        elif diff := record.differences(old):
            problem = (
                f"{out_dir}: holds step-5 maps made with {', '.join(old.describe(o) for o in diff)}; this run asks "
                f"{', '.join(record.describe(o) for o in diff)}"
            )
        elif record.usecase and old.usecase != record.usecase:
            write_record(out_dir, dataclasses.replace(old, usecase=record.usecase))
            return
        else:
            return
    elif any(Path(out_dir).glob("*_prob.png")):
        problem = (
            f"{out_dir}: holds _prob.png files without {RECORD} (written before the record existed), "
            "so it is unknown how they were made"
        )
    if problem and not force:
        raise ValueError(f"{problem}; use another output folder, or --force to recompute them")
    if problem:
        log.warning("%s; --force: removing %d file(s) and recomputing", problem, clear_maps(out_dir))
    write_record(out_dir, record)


def check_stems(images: list[Path], out_dir: Path) -> None:
    """Refuse inputs of one stem from different files: their maps would be the same files of
    ``out_dir`` (``<stem>_prob.png``), so the second would never be computed. ValueError naming both."""
    seen: dict[str, Path] = {}
    for p in images:
        first = seen.setdefault(Path(p).stem, Path(p))
        if first.resolve() != Path(p).resolve():
            raise ValueError(
                f"inputs {first} and {p} share the name {Path(p).stem!r}: both would write "
                f"{Path(out_dir) / (Path(p).stem + '_prob.png')}; rename one, or infer them into separate --out folders"
            )


def _compute_one(
    img_path: Path,
    paths: dict[str, Path],
    claim: Claim,
    engine: Engine,
    opts: Options,
    resize: float,
    save_npy: bool,
    minmax_scale: bool,
    show_progress: bool,
) -> int | None:
    """Compute and write one claimed image; the number of windows computed, None if the claim was lost."""
    from tqdm import tqdm

    img = load_resized(img_path, resize)
    h, w = img.shape[:2]
    total = engine.window_total(h, w, opts)
    t0 = time.perf_counter()
    with tqdm(
        total=total,
        desc=f"{img_path.name} ({engine.name})",
        unit="px",
        unit_scale=True,
        disable=not show_progress,
        leave=False,
    ) as bar:

        def progress(n: int) -> None:
            bar.update(n)
            claim.beat()  # pycaffe holds the GIL: beat between chunks too

        prob = engine.run(img, opts, progress)
    if opts.all_pixels and opts.stride > 1:
        prob = fill_strided(prob, computed_coords(h, opts.stride, True), computed_coords(w, opts.stride, True))
    if not claim.still_held():  # judged dead and taken over meanwhile: theirs now
        log.warning("%s: another worker took this image over; dropping this worker's result", img_path)
        return None
    write_outputs(paths, prob, minmax_scale=minmax_scale, save_npy=save_npy)
    dt = time.perf_counter() - t0
    log.info(
        "%s: %d x %d, %d pixels computed in %.1f s (%.0f pixels/s, %s)",
        img_path.name,
        h,
        w,
        total,
        dt,
        total / dt if dt else 0.0,
        engine.name,
    )
    return total


def infer_images(
    images: list[Path],
    engine: Engine,
    out_dir: Path,
    opts: Options,
    resize: float = 1.0,
    save_npy: bool = False,
    minmax_scale: bool = True,
    show_progress: bool = True,
    wait: bool = True,
    heartbeat: float = claims.HEARTBEAT,
    usecase: str | None = None,
    force: bool = False,
) -> dict:
    """Process images one by one, claiming each (:class:`pipeline.claims.Claim`) so many workers
    can share ``out_dir``.

    Each image is resized by ``resize`` (the use case's magnification) before the engine runs.
    ``minmax_scale`` (default, the original's scipy.misc.imsave) rescales each PNG's min..max to
    0..255; False writes round(255 p).
    Finished images (both PNGs present) are skipped; a crash leaves no partial output under the
    final names. Progress is shown per row or chunk of windows, with an ETA. With ``wait``, images
    claimed by other workers are revisited every ``heartbeat`` seconds after this worker's own pass
    until they are finished, and a dead worker's image is taken over, so that when any worker
    returns every image is done. ``out_dir`` records how its maps are made (``.outputs.json``,
    :class:`~pipeline.inference.outputs.OutputRecord`; ``usecase`` names the use case whose model
    this is, when known), which the scorers and ``export`` read; a folder holding maps made another
    way (other model, mean, engine, stride, all-pixels, resize, PNG scale or dropout) is refused,
    or with ``force`` its maps are removed and computed again (:func:`check_record`). Inputs of one
    stem from different files are refused before any work (:func:`check_stems`). Returns {"computed": [...], "skipped": [...], "seconds": s,
    "pixels": n (windows actually computed, not output pixels), "engine": name}.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    check_stems(images, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = OutputRecord.of_run(
        engine.name,
        engine.model,
        engine.mean_path,
        opts.stride,
        opts.all_pixels,
        resize,
        minmax_scale,
        dropout=engine.dropout,
        classes=engine.n_out,
        usecase=usecase,
    )
    check_record(out_dir, record, force)
    done, skipped, pending, pixels = [], [], [], 0
    t0 = time.perf_counter()

    def attempt(img_path: Path) -> str:
        """'done' (finished before), 'claimed' (another worker owns it), 'computed' or 'lost'."""
        nonlocal pixels
        paths = output_paths(out_dir, img_path.stem)
        if is_done(paths):
            return "done"
        claim = Claim(paths["lock"], heartbeat=heartbeat)
        if not claim.acquire():
            return "claimed"
        try:
            if is_done(paths):  # finished by the previous owner just before we took it
                return "done"
            n = _compute_one(img_path, paths, claim, engine, opts, resize, save_npy, minmax_scale, show_progress)
            if n is None:
                return "lost"
            pixels += n
            return "computed"
        finally:
            claim.release()

    def visit(img_path: Path, left: list[Path]) -> None:
        state = attempt(img_path)
        if state == "computed":
            done.append(str(img_path))
        elif state == "done":
            skipped.append(str(img_path))
        else:
            left.append(img_path)

    for img_path in tqdm(images, desc=f"infer ({engine.name})", unit="image", disable=not show_progress):
        visit(img_path, pending)
    if pending and wait:
        log.info(
            "%d image(s) claimed by other workers: waiting for them (a dead worker's image is taken over)", len(pending)
        )
    while pending and wait:
        time.sleep(min(heartbeat, 5.0))
        still: list[Path] = []
        for img_path in pending:
            visit(img_path, still)
        pending = still
    skipped += [str(p) for p in pending]
    # a worker killed after writing an image, before releasing its claim, left the claim file
    claims.clear_dead_in(out_dir, finished=lambda lock: is_done(output_paths(out_dir, lock.name[1 : -len(".lock")])))
    seconds = time.perf_counter() - t0
    log.info(
        "step 5 summary: %d image(s) computed, %d skipped (done, or claimed by another worker), %d pixels "
        "computed in %.1f s (%.0f pixels/s, engine %s)",
        len(done),
        len(skipped),
        pixels,
        seconds,
        pixels / seconds if seconds else 0.0,
        engine.name,
    )
    return {"computed": done, "skipped": skipped, "seconds": round(seconds, 3), "pixels": pixels, "engine": engine.name}
