"""``python -m pipeline infer-wsi``: probability maps of whole-slide images (OpenSlide), tile by tile."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.caffe_env import ALLOW_PYTHON_LAYERS_ENV
from pipeline.cli.commands.export import slide_spec
from pipeline.export import Options, export_slide
from pipeline.inference import ENGINES
from pipeline.usecases import REGISTRY, get
from pipeline.wsi import Settings, infer_slide, parse_part
from pipeline.wsi.tissue import GREY_THRESHOLD, METHODS


def add(sub) -> None:
    p = sub.add_parser(
        "infer-wsi",
        help="step 5 on whole-slide images (SVS, NDPI, MRXS, tiled TIFF...): "
        "pyramidal TIFFs of probability and class, overlay PNG",
    )
    p.add_argument("slides", nargs="+", type=Path, help="slide files OpenSlide reads")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--mean", type=Path, required=True, help="binaryproto mean of the model's training DB")
    p.add_argument("--out", type=Path, required=True, help="output folder (OUT/<slide stem>/ per slide)")
    known = ", ".join(f"{n} {uc.model_objective:g}x" for n, uc in REGISTRY.items() if uc.model_objective)
    p.add_argument(
        "--usecase",
        choices=list(REGISTRY),
        help=f"the model's magnification is the use case's ({known}); --objective wins",
    )
    p.add_argument("--objective", type=float, help="the model's magnification (apparent objective power, e.g. 10)")
    p.add_argument(
        "--mpp",
        type=float,
        help="the slide's level-0 microns per pixel, when its properties lack (or misstate) objective power and mpp",
    )
    p.add_argument(
        "--mode",
        default="fcn",
        choices=sorted(ENGINES),
        help="step-5 engine (default fcn: fast, numbers differ; exact: the original's numbers)",
    )
    p.add_argument("--tile", type=int, default=1024, help="tile side in model pixels (default 1024)")
    p.add_argument(
        "--tissue",
        default="otsu",
        choices=METHODS,
        help="tissue mask on a low-resolution image: Otsu's threshold of the grey level (default), the "
        "original's grey-level background rule, or none (every tile)",
    )
    p.add_argument(
        "--grey-threshold",
        type=float,
        default=GREY_THRESHOLD,
        help=f"--tissue grey: tissue where rgb2gray <= this (default {GREY_THRESHOLD}, the original's)",
    )
    p.add_argument(
        "--min-tissue",
        type=float,
        default=0.0,
        help="compute a tile when its tissue share is above this (default 0: any tissue)",
    )
    p.add_argument("--all-pixels", action="store_true", help="also the slide's first row and column")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine sharing the tiles")
    p.add_argument(
        "--part",
        help="I/N: only part I (0-based) of N of the tile list (a job-array task); "
        "whoever finishes the last tile writes the outputs",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="a slide folder made with other options or inputs is emptied and computed again "
        "(default: refuse, naming what differs)",
    )
    p.add_argument("--plan-only", action="store_true", help="plan (scale, tissue mask, tiles) and stop")
    p.add_argument("--batch", type=int, default=2048, help="windows per net forward (exact mode)")
    p.add_argument("--deploy", type=Path, help="deploy prototxt (default: rendered from the template into OUT/nets)")
    p.add_argument("--dropout", action="store_true", help="the dropout deploy net")
    p.add_argument("--gpu", action="store_true")
    p.add_argument(
        "--allow-python-layers",
        action="store_true",
        help="load a --deploy net with Python layers (they import and run the module they name)",
    )
    p.set_defaults(func=run)


def run(a) -> int:
    if a.allow_python_layers:
        os.environ[ALLOW_PYTHON_LAYERS_ENV] = "1"  # read by the workers too

    if a.objective is not None:
        objective = a.objective
    elif a.usecase:
        objective = get(a.usecase).model_objective
        if objective is None:
            raise ValueError(f"use case {a.usecase} does not say the magnification of its images; give --objective")
    else:
        raise ValueError("give the model's magnification: --usecase NAME or --objective X")
    for f, what in ((a.model, "--model"), (a.mean, "--mean")):
        if not Path(f).is_file():
            raise FileNotFoundError(f"{what} {f}: no such file")
    if a.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {a.workers}")
    part = parse_part(a.part) if a.part else None
    settings = Settings(
        model_objective=objective,
        mode=a.mode,
        mpp=a.mpp,
        tile=a.tile,
        tissue=a.tissue,
        threshold=a.grey_threshold,
        min_tissue=a.min_tissue,
        all_pixels=a.all_pixels,
    )
    spec = {
        "mode": a.mode,
        "model": a.model,
        "mean": a.mean,
        "deploy": a.deploy,
        "dropout": a.dropout,
        "gpu": a.gpu,
        "net_dir": a.out / "nets",
    }
    for slide in a.slides:
        s = infer_slide(
            slide,
            a.out,
            settings,
            spec,
            workers=a.workers,
            part=part,
            batch=a.batch,
            plan_only=a.plan_only,
            force=a.force,
        )
        if s["state"] == "done":
            # the slide's class map as polygons for QuPath, written once (python -m pipeline export redoes it)
            geojson = Path(s["folder"]) / f"{Path(slide).stem}.geojson"
            if not geojson.is_file():
                export_slide(Path(s["folder"]), slide_spec(a.usecase), Options())
            s["outputs"]["geojson"] = str(geojson)
            rate = s.get("pixels_now", 0) / s["seconds"] if s.get("seconds") else 0
            print(
                f"\n{slide.name}: done; {s['tiles']} of {s['grid_tiles']} tiles with tissue "
                f"({100 * s['skipped_share']:.1f}% skipped), {s['shape'][1]}x{s['shape'][0]} pixels at "
                f"{s['model_objective']:g}x (level {s['level']}, factor {s['factor']:g}, slide {s['slide_objective']:g}x "
                f"from {s['objective_from']}); {s['computed_now']} tiles computed now"
                + (f" in {s['seconds']:.1f} s ({rate:.0f} pixels/s)" if s.get("seconds") else "")
                + f"\n  {s['outputs']['prob']}\n  {s['outputs']['class']}\n  {s['outputs']['overlay']}"
                + f"\n  {s['outputs']['geojson']}"
            )
        elif s["state"] == "planned":
            print(
                f"\n{slide.name}: planned {s['tiles']} of {s['grid_tiles']} tiles ({s['shape'][1]}x{s['shape'][0]} "
                f"model pixels, level {s['level']}, factor {s['factor']:g}) in {s['folder']}"
            )
        else:
            print(
                f"\n{slide.name}: {s['finished']} of {s['tiles']} tiles finished ({s['computed_now']} now, part "
                f"{s['part'] or 'all'}); the others are another part's or worker's: rerun to resume or merge"
            )
    return 0
