"""Benchmark: whole-slide inference (``infer-wsi``) with the fcn engine, one worker against N, in one run.

Builds a pyramidal Aperio-like TIFF of real tissue (scikit-image's IHC image mirrored into an
ellipse on glass, --size x --size pixels at --slide-objective, levels 1, 2, 4, 8, 16), then runs the
slide at the use case's magnification (epithelium 10x: level 2 of a 40x slide) from scratch with 1 worker and with each N
of --workers, each in its own output folder, and prints: tiles computed and skipped by the tissue
mask, seconds for the tiles (workers started, engines built and tiles computed; the plan and the
merge are timed apart), tiles/s, model pixels/s (tiles' pixels at the model's magnification),
level-0 pixels/s, and the speed-up over one worker.

    python bench/wsi.py [--size 4096] [--slide-objective 40] [--tile 256] [--workers 2] [--usecase epi] [--released DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT, artefacts  # noqa: E402
from pipeline.cli.commands.export import slide_spec  # noqa: E402
from pipeline.export import Options, export_slide  # noqa: E402
from pipeline.report.mdtable import count, fixed, percent, pipe_table  # noqa: E402
from pipeline.usecases import get  # noqa: E402
from pipeline.wsi import Settings, infer_slide, make_plan, slide_folder  # noqa: E402
from tests.wsi_slides import tissue_canvas, write_slide  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="slide side at level 0, pixels (default 4096)")
    ap.add_argument("--slide-objective", type=float, default=40, help="the slide's objective power (default 40)")
    ap.add_argument(
        "--fill", type=float, default=0.6, help="the tissue ellipse's axes, share of the slide's (default 0.6)"
    )
    ap.add_argument("--tile", type=int, default=256, help="tile side, model pixels (default 256)")
    ap.add_argument("--workers", default="2", help="comma-separated worker counts compared with 1 (default 2)")
    ap.add_argument("--usecase", default="epi", help="use case giving the magnification (default epi: 10x)")
    ap.add_argument(
        "--released",
        type=Path,
        default=REPO_ROOT / "data" / "released" / "uc2-epi",
        help="folder of the released fold-1 weights and mean (`make bench-wsi` passes "
        "../shared/released/uc2-epi when it exists)",
    )
    ap.add_argument("--keep", type=Path, help="keep the slide and outputs in this folder")
    a = ap.parse_args()
    model = artefacts.released_model(a.released, 1)
    mean = artefacts.released_mean(a.released, 1)
    if not model.is_file() or not mean.is_file():
        print(f"bench/wsi.py: released weights not found in {a.released} (make fetch-released, or --released DIR)")
        return 2
    counts = [1] + [int(n) for n in a.workers.split(",") if int(n) > 1]
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-wsi-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        slide = work / f"bench{a.size}.svs"
        if not slide.is_file():
            write_slide(
                slide,
                tissue_canvas((a.size, a.size), fill=a.fill),
                objective=a.slide_objective,
                mpp=10 / a.slide_objective,
                downsamples=(1, 2, 4, 8, 16),
                tile=256,
            )
        print(
            f"slide: {slide.name}, {a.size}x{a.size} at {a.slide_objective:g}x, {slide.stat().st_size / 1e6:.0f} MB "
            f"({time.perf_counter() - t:.1f} s to build)"
        )
        uc = get(a.usecase)
        settings = Settings(model_objective=uc.model_objective, mode="fcn", tile=a.tile)
        gj_spec = slide_spec(a.usecase)  # the slide's polygons named as infer-wsi names them
        rows = []
        for n in counts:
            out = work / f"out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            spec = {
                "mode": "fcn",
                "model": model,
                "mean": mean,
                "deploy": None,
                "dropout": False,
                "gpu": False,
                "net_dir": out / "nets",
            }
            t = time.perf_counter()
            make_plan(slide, slide_folder(out, slide), settings, model, mean)
            plan_s = time.perf_counter() - t
            s = infer_slide(slide, out, settings, spec, workers=n, show_progress=False)
            assert s["state"] == "done" and s["done_before"] == 0 and s["computed_now"] == s["tiles"]
            # the slide's GeoJSON for QuPath, as infer-wsi writes it (kept with --keep)
            t = time.perf_counter()
            gj = export_slide(slide_folder(out, slide), gj_spec, Options())
            s["geojson_seconds"], s["geojson_features"] = time.perf_counter() - t, gj.read_text().count('"Feature"')
            rows.append((n, s, plan_s, s["merge_seconds"]))
        base = rows[0][1]["seconds"]
        ds = rows[0][1]["model_objective"]
        print(
            f"\nuse case {a.usecase}: model at {ds:g}x, level {rows[0][1]['level']}, "
            f"{rows[0][1]['shape'][1]}x{rows[0][1]['shape'][0]} model pixels, tiles of {a.tile}; fcn engine, CPU; "
            f"{platform.machine()}, {os.cpu_count()} cores\n"
        )
        header = (
            "workers | tiles computed | tiles skipped (no tissue) | tile seconds | tiles/s | model pixels/s "
            "| level-0 pixels/s | speed-up | plan s | merge s | GeoJSON s (polygons)"
        )
        lv0 = (a.slide_objective / ds) ** 2
        cells = []
        for n, s, plan_s, merge_s in rows:
            sec = s["seconds"]
            px = s["computed_pixels"]
            cells.append(
                [
                    n,
                    f"{s['tiles']} of {s['grid_tiles']}",
                    f"{s['grid_tiles'] - s['tiles']} ({percent(s['skipped_share'])})",
                ]
                + [fixed(sec, 1), fixed(s["tiles"] / sec, 3), count(px / sec), count(px * lv0 / sec)]
                + [f"{base / sec:.2f}x", fixed(plan_s, 1), fixed(merge_s, 1)]
                + [f"{fixed(s['geojson_seconds'], 1)} ({s['geojson_features']})"]
            )
        print("\n".join(pipe_table(header.split(" | "), cells)))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
