"""``python -m pipeline regress --usecase tubule``: the five released fold models (and ``--ours``)
on the same images, step 5 at 0.25 (as the use case), pixel and object scores against the annotations.

The released models came with no fold lists: an image may have been in a model's training folds,
so these numbers are a regression check, not a held-out score.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline import artefacts, atomic, inference
from pipeline.report.mdtable import document, fixed, pipe_table
from pipeline.usecases.tubule import images as tubule_images
from pipeline.usecases.tubule import scores

log = logging.getLogger(__name__)

RESIZE = 0.25


def released_models(folder: Path) -> list[tuple[str, Path, Path]]:
    """(name, caffemodel, mean) of the five released fold models in ``folder``."""
    return [
        (
            f"released fold {k}",
            artefacts.released_model(folder, k),
            artefacts.released_mean(folder, k),
        )
        for k in range(1, 6)
    ]


def gather_images(items: list[str], data: Path | None) -> list[Path]:
    """Images of ``--images`` (files, or folders: their ``*.bmp`` but annotations) or, without
    them, every annotated image of ``--data``; each must have its ``_anno.bmp`` beside it."""
    out: list[Path] = []
    for it in items:
        p = Path(it)
        out += sorted(q for q in p.glob("*.bmp") if "_anno" not in q.name) if p.is_dir() else [p]
    if not out and data is not None:
        out = [tubule_images.image_of(a) for a in tubule_images.annotations(data)]
    for p in out:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: image does not exist")
        if not p.with_name(p.stem + tubule_images.ANNO).is_file():
            raise FileNotFoundError(f"{p}: image without annotation (no {p.stem + tubule_images.ANNO})")
    return out


def regress_models(
    models: list[tuple[str, Path, Path]], imgs: list[Path], out: Path, mode: str = "fcn", gpu: bool = False
) -> dict:
    """Each model on ``imgs`` (step 5 at 0.25 with ``mode``; class map = argmax): pixel and object
    counts summed over the images. Writes ``regress_tubule.{json,md}`` into ``out``."""
    out = Path(out)
    rows = []
    for name, model, mean in models:
        for f in (model, mean):
            if not Path(f).is_file():
                raise FileNotFoundError(f"{f}: missing (python -m pipeline fetch-released --usecase tubule)")
        engine = inference.make_engine(mode, model, mean, gpu=gpu, net_dir=out / "nets")
        per = []
        for img in imgs:
            im = inference.load_resized(img, RESIZE)
            cls = engine.run(im, inference.Options()).argmax(2) == 1
            rr = inference.computed_coords(cls.shape[0])
            cc = inference.computed_coords(cls.shape[1])
            per.append({"image": img.name, **scores.image_scores(cls, img.with_name(img.stem + "_anno.bmp"), rr, cc)})
        rows.append({"model": name, **scores.sum_scores(per), "images": per})
    report = {"images": [i.name for i in imgs], "mode": mode, "resize": RESIZE, "rows": rows}
    atomic.write_text(out / "regress_tubule.json", json.dumps(report, indent=1))
    atomic.write_text(out / "regress_tubule.md", markdown(report))
    return report


def markdown(report: dict) -> str:
    """The regression table: per model, pixel and object counts and F."""
    rows = [
        [r["model"], *(r["pixel"][k] for k in ("tp", "fp", "fn")), fixed(r["pixel"]["f_score"])]
        + [*(r["object"][k] for k in ("tp", "fp", "fn")), fixed(r["object"]["f_score"])]
        for r in report["rows"]
    ]
    header = ["model", "pixel tp", "pixel fp", "pixel fn", "pixel F", "tubules tp", "fp", "fn", "object F"]
    return document(
        f"Use case 3 (tubules): {len(report['images'])} image(s), step 5 at {report['resize']} with the "
        f"{report['mode']} engine, class map = argmax; released models had no fold lists (images may be "
        "training images)",
        pipe_table(header, rows),
    )
