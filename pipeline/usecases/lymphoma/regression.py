"""``python -m pipeline regress --usecase lymphoma``: the ten released models (folds 1-5, plain and
dropout, each with its fold's mean) and your own on the same images: per image the votes and the
majority of every model, and tile by tile how often two models vote alike (plain vs dropout of a
fold; each of ``--ours`` vs each released model).

Writes OUT/regress.json (everything, per-tile votes included) and OUT/regress.md (the tables).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pipeline import artefacts, atomic
from pipeline.report.mdtable import MISSING, document, fixed, pipe_table
from pipeline.usecases.lymphoma import step5, tiles
from pipeline.usecases.lymphoma.dataset import images_by_name
from pipeline.usecases.lymphoma.runner import snapshot_name

log = logging.getLogger(__name__)

FOLDER = "uc7-lymphoma"


def released_models(released: Path, folds: tuple[int, ...]) -> list[tuple[str, Path, Path, bool]]:
    """(label, weights, mean, dropout) of each released model of ``folds``, plain then dropout per fold;
    FileNotFoundError naming the first missing file."""
    rd = Path(released)
    if (rd / FOLDER).is_dir():
        rd = rd / FOLDER
    out = []
    for k in folds:
        mean = artefacts.released_mean(rd, k)
        for dropout in (False, True):
            model = artefacts.released_model(rd, k, snapshot_name(dropout))
            for p in (model, mean):
                if not p.is_file():
                    raise FileNotFoundError(f"{p}: released file missing (make fetch-released, or --released DIR)")
            out.append((f"fold {k} {'dropout' if dropout else 'plain'}", model, mean, dropout))
    return out


def input_images(data: Path | None, images: list[str]) -> list[tuple[str, Path]]:
    """(name, path) of the images to classify: ``--images`` files, or every CLL/ FL/ MCL/*.tif of ``--data``."""
    out = [(Path(i).name, Path(i)) for i in images]
    if data is not None:
        out += list(images_by_name(Path(data)).items())
    if not out:
        raise ValueError("regress --usecase lymphoma needs --data (a folder of CLL/ FL/ MCL/*.tif) or --images")
    for _, p in out:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: image not found")
    return out


def agreement(a: list[int], b: list[int]) -> float | None:
    """Fraction of tiles on which two models vote alike (None without tiles)."""
    a, b = np.asarray(a), np.asarray(b)
    return float((a == b).mean()) if len(a) else None


def true_class(name: str) -> int | None:
    """The class of a ``CLASS/x.tif`` name, None for a bare file."""
    head = name.split("/", 1)[0]
    return tiles.CLASSES.index(head) if "/" in name and head in tiles.CLASSES else None


def run(
    released: Path,
    data: Path | None,
    images: list[str],
    out: Path,
    ours: list[Path],
    ours_mean: list[Path],
    folds: tuple[int, ...] = (1, 2, 3, 4, 5),
    mean_mode: str = tiles.DEFAULT_MEAN_MODE,
    gpu: bool = False,
) -> dict:
    """Classify every image with every model; write OUT/regress.json and OUT/regress.md; return the summary."""
    if len(ours_mean) != len(ours):
        raise ValueError(f"give one --ours-mean per --ours ({len(ours)} model(s), {len(ours_mean)} mean(s))")
    models = released_models(released, folds)
    models += [
        (f"ours {i + 1}: {Path(m).name}", Path(m), Path(mn), "dropout" in Path(m).name)
        for i, (m, mn) in enumerate(zip(ours, ours_mean))
    ]
    imgs = input_images(data, images)
    out = Path(out)
    loaded = {name: step5.load(p) for name, p in imgs}
    results: dict[str, dict[str, dict]] = {}
    for label, model, mean, dropout in models:
        clf = step5.TileClassifier(model, mean, out / "nets", dropout=dropout, mean_mode=mean_mode, gpu=gpu)
        results[label] = {}
        for name, img in loaded.items():
            r = clf.classify_image(img)
            results[label][name] = {"counts": r.counts, "predicted": r.label, "votes": [int(v) for v in r.votes]}
        log.info("regress lymphoma: %s done", label)
    pairs = [(f"fold {k} plain", f"fold {k} dropout") for k in folds]
    pairs += [(o, r) for o in results if o.startswith("ours") for r in results if not r.startswith("ours")]
    agree = {
        f"{a} vs {b}": {name: agreement(results[a][name]["votes"], results[b][name]["votes"]) for name in loaded}
        for a, b in pairs
    }
    doc = {
        "released": str(released),
        "mean_mode": mean_mode,
        "images": {
            name: {"true": true_class(name), "tiles": len(next(iter(results.values()))[name]["votes"])}
            for name in loaded
        },
        "models": {label: str(m) for label, m, _, _ in models},
        "results": results,
        "tile_agreement": agree,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "regress.json", json.dumps(doc, indent=1))
    atomic.write_text(out / "regress.md", markdown(doc))
    return {
        "table": str(out / "regress.md"),
        "written": f"{out / 'regress.md'}, {out / 'regress.json'}",
        "models": len(models),
    }


def markdown(doc: dict) -> str:
    """Per image and model the votes (CLL/FL/MCL) and the majority; then the tile agreement."""
    labels, names = list(doc["results"]), list(doc["images"])

    def votes(r: dict) -> str:
        return f"{'/'.join(str(c) for c in r['counts'])} -> {tiles.CLASSES[r['predicted']]}"

    images = [
        [name, MISSING if info["true"] is None else tiles.CLASSES[info["true"]]]
        + [votes(doc["results"][lab][name]) for lab in labels]
        for name, info in doc["images"].items()
    ]
    agreement = [[pair, *(fixed(per[n]) for n in names)] for pair, per in doc["tile_agreement"].items()]
    return document(
        "### Use case 7: released models on the same images (votes CLL/FL/MCL -> majority)",
        pipe_table(["image", "true", *labels], images),
        "### Tile-level agreement (fraction of tiles with the same vote)",
        pipe_table(["models", *names], agreement),
    )
