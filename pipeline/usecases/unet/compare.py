"""The U-Net side by side with use case 2 (Caffe) on one fold: same patients, same protocol, same maps, same scoring.

Caffe's side is the use-case-2 pipeline itself (:func:`pipeline.crossval.run` with
:class:`pipeline.usecases.epi.Epithelium`, fold K only): patches, folds, DBs, training, step-5
outputs of the fold's test and validation patients at 0.5x. The U-Net's side is this use case with
``--split uc2-fold K``. Made equal (issue 27):

- **Validation**: the validation patients (fold K % 5 + 1) are held out of both sides' training
  (Caffe's fold-K training lists leave them out: :attr:`pipeline.crossval.Config.hold_out_validation`);
  each side gets a class-map row and a "P >= threshold" row, the threshold maximising F on those
  validation images (:func:`pipeline.usecases.epi.score_fold`). ``val_in_training`` trains both sides
  on them, as use case 2's published protocol did.
- **Model choice**: the U-Net's checkpoint of lowest validation loss on those held-out patients (the
  original's rule), or with ``--model-choice last`` its last epoch; Caffe's is its last iteration.
- **Maps**: both scored on use case 2's 0.5x grid (the U-Net's 1x probability maps resized with
  MATLAB's imresize, as the masks are) from the float maps (``.npy``) by default; ``score_from``
  "png" reads each side's PNGs instead (Caffe's min-max scaled, the U-Net's round(255 P)).
- **Per image**: each test image's F on both sides, compared pairwise (:mod:`.paired`: mean
  difference, wins/losses, exact sign test, bootstrap 95% interval).
- **Timings**: data preparation over the same images (Caffe: patches of every image and fold K's
  LevelDBs; U-Net: its pytables, plus a pytable of the test images built only to time the same
  images); training per epoch-equivalent (samples seen / training samples); inference of the same
  images (test and validation) with the same number of threads (torch threads; OpenBLAS threads of
  ``caffe train`` and of pycaffe). Measured when the work is done, kept in ``WORK/timings.json``.

    WORK/data/ or WORK/generated_cohort/   the images (the demo generates them)
    WORK/caffe/                            use case 2's work folder (fold K only)
    WORK/unet/                             the U-Net's work folder
    WORK/unet/{output,validation}-uc2grid/ U-Net maps resized to use case 2's grid
    WORK/comparison.md, comparison.json    the table
    WORK/report/index.html                 the table, and both sides' maps of one test image side by side
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from pipeline import artefacts, atomic, crossval, lists, metrics, templates
from pipeline.caffe_env import import_caffe
from pipeline.classify import read_model
from pipeline.inference import read_maps
from pipeline.matlab import imresize_scale
from pipeline.usecases import epi
from pipeline.usecases.unet import compare_table, database, paired, runner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """What the side by side needs beyond the U-Net's :class:`runner.Config` (whose ``data_recipe``
    both sides' data stages take)."""

    fold: int = 1
    caffe_iterations: int = 600000
    caffe_max_positive: int = 5000
    caffe_infer_mode: str = "exact"
    caffe_solver: templates.SolverParams = field(default_factory=templates.SolverParams)
    val_in_training: bool = False  # both sides train on the validation patients (use case 2's protocol)
    score_from: str = "npy"  # both sides' float maps; "png": the PNGs each wrote
    threads: int = 0  # CPU threads of both sides (0: all cores)
    demo: bool = False


#: Pixels of one training sample: Caffe's 32x32 patch (crop_size 32); the U-Net's crop is patch_size².
CAFFE_SAMPLE_SIDE = 32


def caffe_parameters(model: Path) -> int:
    """Number of weights in a caffemodel (all layers' blobs)."""
    param = read_model(model)
    n = 0
    for layer in list(param.layer) + list(param.layers):
        for b in layer.blobs:
            dims = tuple(b.shape.dim) if b.HasField("shape") else (b.num, b.channels, b.height, b.width)
            n += int(np.prod(dims))
    return n


def megapixels(images: list[Path]) -> float:
    """Input megapixels of images (their original size)."""
    total = 0
    for i in images:
        with Image.open(i) as im:
            total += im.size[0] * im.size[1]
    return total / 1e6


def resize_maps(src: Path, dst: Path, images: list[Path], factor: float, source: str = "npy") -> None:
    """Each image's map in ``src`` resized by ``factor`` (MATLAB imresize per channel, as use case 2
    resizes its masks) into ``dst`` as ``<stem>_prob.npy``: ``source`` "npy" resizes the float map,
    "png" the values of ``_prob.png`` (green / 255) as [1 - P, P]."""
    dst.mkdir(parents=True, exist_ok=True)
    for img in images:
        if source == "npy":
            prob = np.load(src / f"{img.stem}_prob.npy").astype(np.float64)
        else:
            p1, _ = read_maps(src, img.stem, source)
            prob = np.stack([1 - p1, p1], axis=2)
        small = np.stack([imresize_scale(prob[..., c], factor) for c in range(prob.shape[2])], axis=2)
        with atomic.atomic_path(dst / f"{img.stem}_prob.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, small.astype(np.float32))


def side_scores(
    test_dir: Path, val_dir: Path, test: list[Path], val: list[Path], factor: float, stride: int | None, source: str
) -> dict:
    """One side's scores on the test images with use case 2's scoring: the class map and ``P >=
    threshold`` (threshold maximising F on the validation images), pooled
    (:func:`pipeline.usecases.epi.score_fold`) and per image ({name: {"class_map": F, "thresholded": F}})."""
    s = epi.score_fold(test_dir, 0, test, val, factor, val_dir, source, stride)
    probs, classes, truths = epi.score_maps(test_dir, test, factor, stride, source)
    s["per_image"] = {
        img.name: {
            "class_map": metrics.pixel_scores(c, t)["f_score"],
            "thresholded": metrics.pixel_scores(p >= s["threshold"], t)["f_score"],
        }
        for img, p, c, t in zip(test, probs, classes, truths)
    }
    return s


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


@contextlib.contextmanager
def blas_threads(n: int):
    """OpenBLAS threads of ``caffe train`` (environment of the child process) and of pycaffe in this
    process (threadpoolctl, after importing Caffe): ``n`` inside the block."""
    old = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    os.environ.update({k: str(n) for k in old})
    try:
        import_caffe()
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _train_batch(models: Path, k: int) -> int:
    """The training batch size of fold ``k``'s net (the first ``batch_size`` of its train/test prototxt)."""
    text = (models / artefacts.net(k)).read_text()
    return int(re.search(r"batch_size:\s*(\d+)", text).group(1))


def _caffe_side(uc2, ucfg: runner.Config, opt: Options, work: Path, timings: Timings, threads: int) -> dict:
    """Use case 2's own run (:func:`pipeline.crossval.run`, fold ``opt.fold`` only), stage group by
    stage group so that each is timed when it computes (what is done before each group: its stage
    graph, :func:`pipeline.crossval.graph`)."""
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
        score_from=opt.score_from,
        show_progress=ucfg.show_progress,
        folds=(k,),
        force=ucfg.force,
        data_recipe=ucfg.data_recipe,
        hold_out_validation=not opt.val_in_training,
    )
    g = crossval.graph(uc2, cfg)
    by_patient = uc2.images_by_patient(cfg.data)
    everything = [i for imgs in by_patient.values() for i in imgs]
    prep_done = g.done(f"dbs {k}")
    t = time.perf_counter()
    crossval.run(uc2, cfg, ("patches", "folds", "dbs"))
    if not prep_done:
        timings.record("caffe_prep", time.perf_counter() - t, images=len(everything), megapixels=megapixels(everything))
    trained = g.done(f"train {k}")
    t = time.perf_counter()
    with blas_threads(threads):
        crossval.run(uc2, cfg, ("prototxt", "train"))
    if not trained:
        batch = _train_batch(work / "models", k)
        timings.record(
            "caffe_train",
            time.perf_counter() - t,
            iterations=cfg.iterations,
            batch=batch,
            samples=cfg.iterations * batch,
            train_samples=len(lists.read_list(artefacts.list_path(work, "train", k))),
            sample_pixels=CAFFE_SAMPLE_SIDE**2,
            threads=threads,
        )
    assignment = json.loads((work / "lists" / "folds.json").read_text())
    test, val = crossval.fold_images(assignment, by_patient, k, cfg.nfolds, uc2.validation)
    outputs_done = g.all_done(("outputs",), keys=(k,))  # the test and (when there are any) validation maps
    t = time.perf_counter()
    with blas_threads(threads):
        crossval.run(uc2, cfg, ("outputs",))
    if not outputs_done:
        timings.record(
            "caffe_infer",
            time.perf_counter() - t,
            megapixels=megapixels(test + val),
            images=len(test + val),
            threads=threads,
        )
    return {
        "model": artefacts.model_path(work, k, cfg.iterations),
        "output": artefacts.output_dir(work, k),
        "validation": artefacts.validation_dir(work, k),
        "test": test,
        "val": val,
        "train_patients": lists.read_names(work / "lists" / artefacts.parent_list("train", k)),
        "stride": cfg.stride,
    }


def _unet_side(ucfg: runner.Config, timings: Timings, threads: int, all_images: list[Path]) -> dict:
    import torch

    torch.set_num_threads(threads)
    work = ucfg.work
    built = not runner.graph(ucfg).done("dbs")
    s = runner.run(ucfg, ("dbs",))
    if built:  # built now: time the same images as Caffe's patches (the test ones too)
        sp = s["split"]
        by_patient = runner.patients_and_images(ucfg.data)
        test_pairs = runner.pairs_of(tuple(sp["test"]), by_patient)
        scratch = work / "timing-only" / f"{database.DATANAME}_test.pytable"
        t = time.perf_counter()
        database.write_pytable(scratch, test_pairs, ucfg.db, Path(ucfg.data), ucfg.show_progress)
        extra = time.perf_counter() - t
        scratch.unlink()
        scratch.parent.rmdir()
        timings.record(
            "unet_prep",
            s["dbs_seconds"] + extra,
            used_seconds=s["dbs_seconds"],
            timing_only_seconds=round(extra, 2),
            images=len(all_images),
            megapixels=megapixels(all_images),
        )
    s = runner.run(ucfg, ("train", "outputs", "scores"))
    tr = s["training"]
    timings.record(
        "unet_train",
        tr.get("train_seconds", 0.0),
        epochs=tr.get("epochs"),
        samples=tr.get("epochs", 0) * tr["tiles"]["train"],
        train_samples=tr["tiles"]["train"],
        sample_pixels=ucfg.train.patch_size**2,
        threads=threads,
    )
    parts = [s["outputs"], s.get("validation_outputs") or {"computed": []}]
    if any(o["computed"] for o in parts):
        timings.record(
            "unet_infer",
            sum(o.get("seconds", 0.0) for o in parts if o["computed"]),
            megapixels=sum(o.get("pixels", 0) for o in parts if o["computed"]) / 1e6,
            images=sum(len(o["computed"]) for o in parts),
            threads=threads,
        )
    return {
        "scores": s["scores"],
        "model": s["model"],
        "training": tr,
        "parameters": tr["parameters"],
        "split": s["split"],
        "output": work / "output",
        "validation": work / "validation",
    }


def run(uc2, ucfg: runner.Config, opt: Options) -> dict:
    """Both sides on fold ``opt.fold``; returns the summary with the table in WORK/comparison.md
    and the page WORK/report/index.html."""
    if opt.score_from not in ("npy", "png"):
        raise ValueError(f"--score-from {opt.score_from!r}: use npy or png")
    work = Path(ucfg.work)
    timings = Timings(work / "timings.json")
    threads = opt.threads or os.cpu_count() or 1
    unet_cfg = replace(
        ucfg,
        work=work / "unet",
        split=f"uc2-fold {opt.fold}",
        val_in_training=opt.val_in_training,
        validation_outputs=True,
    )
    caffe = _caffe_side(uc2, ucfg, opt, work / "caffe", timings, threads)
    everything = [i for imgs in epi.images_by_patient(ucfg.data).values() for i in imgs]
    unet = _unet_side(unet_cfg, timings, threads, everything)
    test, val = caffe["test"], caffe["val"]
    u_test = sorted(unet["scores"]["images"])
    u_val = sorted(i.name for p in unet["split"]["val"] for i in runner.patients_and_images(ucfg.data)[p])
    if u_test != sorted(i.name for i in test) or u_val != sorted(i.name for i in val):
        raise RuntimeError(
            f"images differ: U-Net test {u_test}, validation {u_val}; Caffe test {sorted(i.name for i in test)}, "
            f"validation {sorted(i.name for i in val)}"
        )
    u_train = sorted(unet["split"]["train"])
    if u_train != sorted(caffe["train_patients"]):
        raise RuntimeError(f"training patients differ: U-Net {u_train}, Caffe {sorted(caffe['train_patients'])}")
    factor = epi.Params().resize
    grid = {"test": work / "unet" / "output-uc2grid", "val": work / "unet" / "validation-uc2grid"}
    resize_maps(unet["output"], grid["test"], test, factor, opt.score_from)
    resize_maps(unet["validation"], grid["val"], val, factor, opt.score_from)
    # Caffe's maps are step-5 outputs: their record (.outputs.json) says which pixels were computed
    cs = side_scores(caffe["output"], caffe["validation"], test, val, factor, None, opt.score_from)
    us = side_scores(grid["test"], grid["val"], test, val, factor, 1, "npy")
    pairs = {
        key: paired.compare(
            {n: v[key] for n, v in cs["per_image"].items()},
            {n: v[key] for n, v in us["per_image"].items()},
            seed=ucfg.seed,
        )
        for key in ("class_map", "thresholded")
    }
    result = {
        "fold": opt.fold,
        "test_images": [i.name for i in test],
        "validation_images": [i.name for i in val],
        "train_patients": u_train,
        "protocol": {
            "validation_in_training": opt.val_in_training,
            "score_from": opt.score_from,
            "threads": threads,
            "caffe_model": f"last iteration ({opt.caffe_iterations})",
            "unet_model": unet["model"],
            "unet_epochs": unet["training"].get("epochs"),
            "unet_best_epoch": unet["training"].get("best_epoch"),
            "caffe_infer_mode": opt.caffe_infer_mode,
            "demo": opt.demo,
        },
        "caffe": {k: cs[k] for k in ("threshold", "class_map", "thresholded", "per_image")},
        "unet": {k: us[k] for k in ("threshold", "class_map", "thresholded", "per_image")},
        "unet_1x": unet["scores"],
        "paired": pairs,
        "parameters": {"caffe": caffe_parameters(caffe["model"]), "unet": unet["parameters"]},
        "timings": timings.data,
        "budgets": {
            "caffe": {"published_iterations": 600000, "iterations": opt.caffe_iterations},
            "unet": {"published_epochs": 100, "epochs": unet["training"].get("epochs")},
        },
    }
    atomic.write_text(work / "comparison.json", json.dumps(result, indent=1, default=str))
    atomic.write_text(work / "comparison.md", compare_table.markdown(result))
    report = compare_table.write_report(
        work,
        result,
        {"caffe": caffe["output"], "unet": grid["test"]},
        {n: Path(ucfg.data) / n for n in result["test_images"]},
    )
    return {
        "fold": opt.fold,
        "test_images": result["test_images"],
        "table": str(work / "comparison.md"),
        "report": str(report),
    }
