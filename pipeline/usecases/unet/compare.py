"""The U-Net side by side with use case 2 (Caffe) on one fold: same patients, same masks, same scoring.

Caffe's side is the use-case-2 pipeline itself (:func:`pipeline.crossval.run` with
:class:`pipeline.usecases.epi.Epithelium`, fold K only): patches, folds, DBs, training, step-5
outputs of the fold's test (and validation) patients at 0.5x, and its scores. The U-Net's side is
this use case with ``--split uc2-fold K``: it trains on the same patients as Caffe's fold K and is
tested on the same test patients. Both are scored by use case 2's pixel scoring
(:func:`pipeline.usecases.epi.score_maps`: its masks, the pixels it scores); the U-Net once on its
own 1x grid and once on use case 2's 0.5x grid (its probability map resized with MATLAB's imresize,
as the masks are), the same pixels as Caffe's rows.

Times are measured when the work is done and recorded in ``WORK/timings.json`` (a rerun that
finds the work done shows the recorded figures): data preparation (Caffe: patches and LevelDBs of
the fold; U-Net: the pytables), training, and inference per megapixel of the input images (at
their original size; Caffe's outputs are of the fold's test and validation images, the U-Net's of
the test images).

    WORK/data/ or WORK/generated_cohort/   the images (the demo generates them)
    WORK/caffe/                            use case 2's work folder (fold K only)
    WORK/unet/                             the U-Net's work folder
    WORK/unet/output-uc2grid/              U-Net maps resized to use case 2's grid
    WORK/comparison.md, comparison.json    the table
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import atomic, crossval, recipes, templates
from pipeline.matlab import imresize_scale
from pipeline.usecases import epi
from pipeline.usecases.unet import runner

log = logging.getLogger(__name__)


@dataclass
class Options:
    """What the side by side needs beyond the U-Net's :class:`runner.Config`."""

    fold: int = 1
    caffe_iterations: int = 600000
    caffe_max_positive: int = 5000
    caffe_infer_mode: str = "exact"
    caffe_solver: templates.SolverParams = field(default_factory=templates.SolverParams)
    data_recipe: recipes.Recipe | None = None  # the generated cohort's recipe (demo), else the data path


def caffe_parameters(model: Path) -> int:
    """Number of weights in a caffemodel (all layers' blobs)."""
    from pipeline.classify import read_model

    param = read_model(model)
    n = 0
    for layer in list(param.layer) + list(param.layers):
        for b in layer.blobs:
            dims = tuple(b.shape.dim) if b.HasField("shape") else (b.num, b.channels, b.height, b.width)
            n += int(np.prod(dims))
    return n


def megapixels(images: list[Path]) -> float:
    """Input megapixels of images (their original size)."""
    from PIL import Image

    total = 0
    for i in images:
        with Image.open(i) as im:
            total += im.size[0] * im.size[1]
    return total / 1e6


def resize_maps(src: Path, dst: Path, images: list[Path], factor: float) -> None:
    """``<stem>_prob.npy`` of ``src`` resized by ``factor`` (MATLAB imresize per channel, as use case 2
    resizes its masks) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for img in images:
        prob = np.load(src / f"{img.stem}_prob.npy")
        small = np.stack(
            [imresize_scale(prob[..., c].astype(np.float64), factor) for c in range(prob.shape[2])], axis=2
        )
        with atomic.atomic_path(dst / f"{img.stem}_prob.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, small.astype(np.float32))


class Timings:
    """Stage durations recorded in a JSON file: measured when the work was done, kept otherwise."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def record(self, key: str, seconds: float, **extra) -> None:
        self.data[key] = {"seconds": round(seconds, 2), **extra}
        atomic.write_text(self.path, json.dumps(self.data, indent=1))

    def get(self, key: str) -> dict | None:
        return self.data.get(key)


def _caffe_side(uc2, ucfg: runner.Config, opt: Options, work: Path, timings: Timings) -> dict:
    """Use case 2's own run (:func:`pipeline.crossval.run`, fold ``opt.fold`` only), stage group by
    stage group so that each is timed when it computes."""
    k = opt.fold
    cfg = crossval.Config(
        data=Path(ucfg.data),
        work=work,
        params=epi.Params(max_positive=opt.caffe_max_positive),
        iterations=opt.caffe_iterations,
        seed=ucfg.seed,
        gpu=ucfg.gpu,
        solver=opt.caffe_solver,
        infer_mode=opt.caffe_infer_mode,
        show_progress=ucfg.show_progress,
        folds=(k,),
        force=ucfg.force,
        data_recipe=opt.data_recipe,
    )
    prep_done = crossval.recorded_done(work, "dbs", str(k))
    t = time.perf_counter()
    crossval.run(uc2, cfg, ("patches", "folds", "dbs"))
    if not prep_done:
        timings.record("caffe_prep", time.perf_counter() - t)
    trained = crossval.trained(work, k)
    t = time.perf_counter()
    crossval.run(uc2, cfg, ("prototxt", "train"))
    if not trained:
        timings.record("caffe_train", time.perf_counter() - t)
    model = work / "models" / f"{k}_caffenet_train_w32_iter_{cfg.iterations}.caffemodel"
    assignment = json.loads((work / "lists" / "folds.json").read_text())
    by_patient = uc2.images_by_patient(cfg.data)
    imgs = [i for part in crossval.fold_images(assignment, by_patient, k, cfg.nfolds, uc2.validation) for i in part]
    outputs_done = crossval.recorded_done(work / "output", "outputs", str(k))
    t = time.perf_counter()
    crossval.run(uc2, cfg, ("outputs",))
    if not outputs_done:
        timings.record("caffe_infer", time.perf_counter() - t, megapixels=megapixels(imgs), images=len(imgs))
    scores = crossval.run(uc2, cfg, ("scores",))["scores"]["folds"][0]
    return {"scores": scores, "model": model, "output": work / "output" / str(k)}


def _unet_side(ucfg: runner.Config, timings: Timings) -> dict:
    from pipeline.usecases.unet.checkpoint import BEST
    from pipeline.usecases.unet.database import DATANAME

    work = Path(ucfg.work)
    had_dbs = (work / "pytables.json").is_file() and (work / f"{DATANAME}_train.pytable").is_file()
    s = runner.run(ucfg, ("dbs",))
    if not had_dbs:
        timings.record("unet_prep", s["dbs_seconds"])
    s = runner.run(ucfg, ("train", "outputs", "scores"))
    timings.record("unet_train", s["training"].get("train_seconds", 0.0), epochs=s["training"].get("epochs"))
    o = s["outputs"]
    if o["computed"]:
        timings.record("unet_infer", o["seconds"], megapixels=o["pixels"] / 1e6, images=len(o["computed"]))
    return {
        "scores": s["scores"],
        "model": work / BEST,
        "parameters": s["training"]["parameters"],
        "split": s["split"],
        "output": work / "output",
    }


def run(uc2, ucfg: runner.Config, opt: Options) -> dict:
    """Both sides on fold ``opt.fold``; returns the summary with the table in WORK/comparison.md."""
    work = Path(ucfg.work)
    timings = Timings(work / "timings.json")
    unet_cfg = replace(ucfg, work=work / "unet", split=f"uc2-fold {opt.fold}")
    caffe = _caffe_side(uc2, ucfg, opt, work / "caffe", timings)
    unet = _unet_side(unet_cfg, timings)
    test = [Path(ucfg.data) / n for n in unet["scores"]["images"]]
    if sorted(i.name for i in test) != sorted(caffe["scores"]["test_images"]):
        raise RuntimeError(
            f"test images differ: U-Net {sorted(i.name for i in test)}, Caffe {sorted(caffe['scores']['test_images'])}"
        )
    grid = work / "unet" / "output-uc2grid"
    resize_maps(unet["output"], grid, test, epi.Params().resize)
    unet_grid = runner.score(grid, test, epi.Params().resize)
    rows = _rows(caffe, unet, unet_grid, timings, opt)
    result = {
        "fold": opt.fold,
        "test_images": [i.name for i in test],
        "split": unet["split"],
        "rows": rows,
        "timings": timings.data,
    }
    atomic.write_text(work / "comparison.json", json.dumps(result, indent=1, default=str))
    atomic.write_text(work / "comparison.md", markdown(result))
    return {"fold": opt.fold, "test_images": result["test_images"], "table": str(work / "comparison.md")}


def _per_mp(t: dict | None) -> float | None:
    return None if not t or not t.get("megapixels") else t["seconds"] / t["megapixels"]


def _rows(caffe: dict, unet: dict, unet_grid: dict, timings: Timings, opt: Options) -> list[dict]:
    cp = caffe_parameters(caffe["model"])
    up = unet["parameters"]
    common_c = {
        "prep_s": (timings.get("caffe_prep") or {}).get("seconds"),
        "train_s": (timings.get("caffe_train") or {}).get("seconds"),
        "infer_s_per_mp": _per_mp(timings.get("caffe_infer")),
        "parameters": cp,
        "weights_mb": cp * 4 / 1e6,
    }
    common_u = {
        "prep_s": (timings.get("unet_prep") or {}).get("seconds"),
        "train_s": (timings.get("unet_train") or {}).get("seconds"),
        "infer_s_per_mp": _per_mp(timings.get("unet_infer")),
        "parameters": up,
        "weights_mb": up * 4 / 1e6,
    }
    cs = caffe["scores"]
    return [
        {"system": f"Caffe use case 2, class map ({opt.caffe_infer_mode}, 0.5x)", **_sc(cs["class_map"]), **common_c},
        {
            "system": f"Caffe use case 2, P >= {cs['threshold']:.2f} (threshold from validation)",
            **_sc(cs["thresholded"]),
            **common_c,
        },
        {"system": "U-Net, class map (1x)", **_sc(unet["scores"]), **common_u},
        {"system": "U-Net, class map on use case 2's grid (0.5x)", **_sc(unet_grid), **common_u},
    ]


def _sc(s: dict) -> dict:
    return {k: s[k] for k in ("n", "f_score", "precision", "recall")}


def markdown(r: dict) -> str:
    """The side-by-side table."""
    f = lambda v, d=4: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = [
        f"### U-Net vs Caffe use case 2, fold {r['fold']}: {len(r['test_images'])} test images "
        f"({', '.join(r['test_images'])})",
        "",
        "| system | pixels scored | F | precision | recall | data prep (s) | training (s) | "
        "inference (s per input MP) | parameters | weights (MB, float32) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['system']} | {x['n']} | {f(x['f_score'])} | {f(x['precision'])} | {f(x['recall'])} | "
            f"{f(x['prep_s'], 1)} | {f(x['train_s'], 1)} | {f(x['infer_s_per_mp'], 2)} | {x['parameters']:,} | "
            f"{f(x['weights_mb'], 2)} |"
        )
    lines += [
        "",
        "Same test patients and masks; scored with use case 2's pixel scoring (first row and column of "
        "each map excluded, as there). Caffe's inference covers its test and validation images; data prep = "
        "patch sampling + LevelDBs (Caffe), pytables (U-Net).",
    ]
    return "\n".join(lines) + "\n"
