"""Benchmark: does the work RADHicaL saves turn into wall time saved? (`make bench-radhical`)

Three parts, every ratio from runs made one after the other in this one process:

1. **Engine sweep.** Whole generated images (the demo's 800x800 and 2000x2000, ``--sizes``) with
   masks of nucleus-like blobs (ellipses of 9-18 by 6-12 px, in nests) covering 100, 50, 25, 15 and
   5% of the pixels. Per engine and coverage: the work asked for (exact: windows, a fraction of the
   image's; fcn: the 64-px output tiles holding masked pixels, a fraction of the image's tiles) and
   the wall time, as a fraction of the same engine's run on the whole image (the naive run's
   mask: every pixel). The exact engine classifies about 100-200 windows a second on 2 cores, so
   it runs on the ``--exact-crop`` x ``--exact-crop`` top-left crop of each image and mask
   (4 million windows of a 2000x2000 image would take hours); its cost per window does not depend
   on the image's size.
2. **fcn tile sizes** (``--tiles``): the fcn sweep at 15% for each output tile size, for choosing
   ``fcn.TILE``.
3. **The cascade** on the demo's test images (``--work``, default runs/demo-radhical; `make
   demo-radhical` makes it): the naive run (level 1, every pixel) and the cascade (published
   thresholds, and the search's pick when the demo made one), with the engine the demo used
   (``--cascade-mode``), every run computed afresh in a temporary folder, image by image side by side;
   windows, fcn tiles and wall time per level, seconds per window per level.

The nets: the demo's fold-1 level-1 model when the work folder has one, else random weights (the
engines' cost does not depend on the weights). The last line is
``RESULT exact_work=<fraction at 15%> exact_time=<> fcn_work=<> fcn_time=<>`` (fcn at the largest
size measured). Targets (issue 26): exact time <= 1.1 x work + 0.03, fcn time <= 1.3 x work + 0.05.

    python bench/radhical.py [--work runs/demo-radhical] [--sizes 800,2000] [--coverages 100,50,25,15,5]
                             [--exact-crop 96] [--tiles 32,64,128,256] [--no-cascade] [--repeat 1]
                             [--cascade-mode exact|fcn]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT, inference, lists, nuclei, templates  # noqa: E402
from pipeline.imageio import load_image  # noqa: E402
from pipeline.inference.engines import fcn as fcn_engine  # noqa: E402
from pipeline.usecases.radhical import cascade  # noqa: E402

# --------------------------------------------------------------------------- inputs


def blob_mask(shape: tuple[int, int], coverage: float, seed: int = 0) -> np.ndarray:
    """A mask of nucleus-like blobs covering about ``coverage`` (0..1) of the pixels: ellipses with
    semi-axes 9-18 by 6-12 px at random angles, in nests (Gaussian clusters of 60 px spread around
    one nest centre per 250x250 px), added until the coverage is reached; all pixels at 1."""
    h, w = shape
    if coverage >= 1:
        return np.ones(shape, dtype=bool)
    rng = np.random.RandomState(seed)
    m = np.zeros(shape, dtype=bool)
    nests = rng.rand(max(1, (h * w) // (250 * 250)), 2) * [h, w]
    yy, xx = np.mgrid[-20:21, -20:21]
    target = coverage * h * w
    count = 0
    while count < target:
        cy, cx = nests[rng.randint(len(nests))] + rng.randn(2) * 60
        a, b, t = rng.uniform(9, 18), rng.uniform(6, 12), rng.uniform(0, np.pi)
        u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
        ell = (u / a) ** 2 + (v / b) ** 2 <= 1
        r0, c0 = int(cy) - 20, int(cx) - 20
        rs, cs = slice(max(0, r0), min(h, r0 + 41)), slice(max(0, c0), min(w, c0 + 41))
        if rs.start >= rs.stop or cs.start >= cs.stop:
            continue
        sub = ell[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0]
        count += int((sub & ~m[rs, cs]).sum())
        m[rs, cs] |= sub
    return m


def random_model(folder: Path) -> tuple[Path, Path]:
    """A 3-output deploy net with random weights (saved by Caffe) and a flat mean, for timing only."""
    from pipeline.caffe_env import caffe_pb2, import_caffe

    caffe = import_caffe()
    folder.mkdir(parents=True, exist_ok=True)
    deploy = templates.write_deploy(folder / "random_deploy.prototxt", num_output=3)
    net = caffe.Net(str(deploy), caffe.TEST)
    rng = np.random.RandomState(1)
    for blobs in net.params.values():
        blobs[0].data[...] = rng.randn(*blobs[0].data.shape) * 0.7 / np.sqrt(np.prod(blobs[0].data.shape[1:]))
        blobs[1].data[...] = rng.randn(*blobs[1].data.shape) * 0.2
    model = folder / "random_iter_1.caffemodel"
    net.save(str(model))
    blob = caffe_pb2().BlobProto()
    blob.num, blob.channels, blob.height, blob.width = 1, 3, 32, 32
    blob.data.extend([120.0] * (3 * 32 * 32))
    mean = folder / "random_mean.binaryproto"
    mean.write_bytes(blob.SerializeToString())
    return model, mean


def demo_models(work: Path, fold: int = 1) -> dict[int, cascade.LevelModel] | None:
    """The demo's fold-``fold`` level models (of the iterations its summary names), or None."""
    summary = work / "summary.json"
    iterations = json.loads(summary.read_text()).get("iterations") if summary.is_file() else None
    for cand in sorted((work / "models").glob(f"{fold}_1_caffenet_train_w32_iter_*.caffemodel")):
        it = int(cand.stem.rsplit("_", 1)[1])
        if iterations is None or it == iterations:
            models = cascade.level_models(work, fold, it)
            if all(m.model.is_file() and m.mean.is_file() for m in models.values()):
                return models
    return None


# --------------------------------------------------------------------------- measurements


def timed(engine: inference.Engine, img: np.ndarray, mask: np.ndarray, repeat: int) -> float:
    """Best wall seconds of ``repeat`` masked runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine.run(img, inference.Options(mask=mask))
        best = min(best, time.perf_counter() - t0)
    return best


def sweep(engine: inference.Engine, img: np.ndarray, coverages: list[float], repeat: int) -> list[dict]:
    """Per coverage: work fraction (windows or tiles), time fraction against the full mask, seconds."""
    h, w = img.shape[:2]
    full = np.ones((h, w), dtype=bool)
    t_full = timed(engine, img, full, repeat)
    tiles_full = getattr(engine, "last_work", {}).get("tiles")
    rows = []
    for cov in coverages:
        m = blob_mask((h, w), cov, seed=int(cov * 1000))
        t = timed(engine, img, m, repeat) if cov < 1 else t_full
        if engine.name == "fcn":
            lw = engine.last_work if cov < 1 else {"tiles": tiles_full}
            work = lw["tiles"] / engine.last_work["tiles_total"]
        else:
            work = m.sum() / m.size
        rows.append(
            {
                "asked": cov,
                "coverage": float(m.mean()),
                "work": float(work),
                "time": t / t_full,
                "seconds": t,
                "full_seconds": t_full,
                "whole": bool(getattr(engine, "last_work", {}).get("whole", False)) if cov < 1 else True,
            }
        )
    return rows


def run_cascade(
    models, images: list[Path], thresholds: dict, root: Path, mode: str = "exact", gpu: bool = False
) -> list[dict]:
    """Naive and cascade runs (engine ``mode``) on ``images``, computed afresh, image by image side by
    side (:meth:`cascade.Cascade.run_interleaved`); per run the windows, fcn tiles and seconds per
    level (summed over the images)."""
    casc = cascade.Cascade(models, cascade.Options(mode=mode, gpu=gpu), root, root / "nets", show_progress=False)
    runs = [("naive", None, (1,))] + [(n, th, (4, 3, 2, 1)) for n, th in thresholds.items()]
    rows = []
    for (name, _, levels), res in zip(runs, casc.run_interleaved(images, runs)):
        st = [res.images[i.name[:-4]] for i in images]
        per = {
            lv: {
                "windows": sum(s[lv]["computed"] for s in st),
                "pixels": sum(s[lv]["pixels"] for s in st),
                "seconds": sum(s[lv]["seconds"] for s in st),
                "engine": sum(s[lv]["engine_seconds"] for s in st),
                "tiles": [sum(s[lv].get("tiles") or 0 for s in st), sum(s[lv].get("tiles_total") or 0 for s in st)],
            }
            for lv in levels
        }
        rows.append({"run": name, "levels": per})
    return rows


def demo_mode(work: Path) -> str:
    """The engine the demo's cascade used (WORK/cascade/naive.json), else exact (the demo's default)."""
    naive = work / "cascade" / "naive.json"
    return json.loads(naive.read_text())["options"]["mode"] if naive.is_file() else "exact"


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "runs" / "demo-radhical")
    ap.add_argument("--sizes", default="800,2000", help="whole image sizes of the sweep (px a side; empty: none)")
    ap.add_argument("--coverages", default="100,50,25,15,5", help="mask coverages, percent of the pixels")
    ap.add_argument("--exact-crop", type=int, default=96, help="the exact engine's crop of each image (px a side)")
    ap.add_argument("--tiles", default="", help="fcn output tile sizes to compare at 15%% (e.g. 32,64,128,256)")
    ap.add_argument("--no-cascade", action="store_true", help="skip part 3 (the cascade on the demo's images)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per point (the best counts)")
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--gpu", action="store_true", help="the engines on the GPU")
    ap.add_argument(
        "--cascade-mode", choices=("exact", "fcn"), help="part 3's engine (default: the one the demo's cascade used)"
    )
    a = ap.parse_args()
    sizes = [int(v) for v in a.sizes.split(",") if v]
    coverages = [float(v) / 100 for v in a.coverages.split(",") if v]
    tmp = Path(tempfile.mkdtemp(prefix="bench_radhical_"))
    models = demo_models(a.work, a.fold)
    if models is not None:
        model, mean, origin = models[1].model, models[1].mean, f"the demo's level-1 model ({models[1].model.name})"
    else:
        model, mean = random_model(tmp / "random")
        origin = "random weights (no demo models in --work)"
    engines = {m: inference.make_engine(m, model, mean, gpu=a.gpu, net_dir=tmp / "nets") for m in ("exact", "fcn")}
    load = os.getloadavg()
    print(
        f"RADHicaL bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{'GPU' if a.gpu else 'CPU'} ({platform.processor() or platform.machine()} x{os.cpu_count()} cores), load {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f}; net: {origin}; fcn tile {fcn_engine.TILE} px, margin {engines['fcn'].margin} px"
    )
    print(
        f"\n1. engine sweep (time: fraction of the same engine's run on every pixel; exact on {a.exact_crop} px crops)"
    )
    print(f"{'engine':<6} {'image':>9} {'coverage':>8} {'work':>6} {'time':>6} {'seconds':>8} {'target':>7} {'met':>4}")
    result: dict[str, dict] = {}
    for size in sizes:
        img = nuclei_image(tmp, size)
        for mode in ("exact", "fcn"):
            im = img[: a.exact_crop, : a.exact_crop] if mode == "exact" else img
            rows = sweep(engines[mode], im, coverages, a.repeat)
            for r in rows:
                target = (1.1 * r["work"] + 0.03) if mode == "exact" else (1.3 * r["work"] + 0.05)
                label = f"{im.shape[0]}x{im.shape[1]}"
                print(
                    f"{mode:<6} {label:>9} {100 * r['coverage']:>7.1f}% {r['work']:>6.3f} {r['time']:>6.3f} "
                    f"{r['seconds']:>8.2f} {target:>7.3f} {'yes' if r['time'] <= target else 'NO':>4}"
                    + (
                        "  (whole image: cheaper than its tiles)"
                        if mode == "fcn" and r["whole"] and r["coverage"] < 1
                        else ""
                    )
                )
                if abs(r["asked"] - 0.15) < 1e-9:
                    result[mode] = r
    if a.tiles and sizes:
        print("\n2. fcn output tile size at 15% coverage (largest size)")
        img = nuclei_image(tmp, max(sizes))
        m = blob_mask(img.shape[:2], 0.15, seed=150)
        fcn = engines["fcn"]
        t_full = timed(fcn, img, np.ones(img.shape[:2], bool), a.repeat)
        fcn.whole_when_cheaper = False
        print(f"{'tile':>5} {'work':>6} {'time':>6} {'regions':>8}")
        for tile in [int(v) for v in a.tiles.split(",")]:
            fcn.tile = tile
            t = timed(fcn, img, m, a.repeat)
            lw = fcn.last_work
            print(f"{tile:>5} {lw['tiles'] / lw['tiles_total']:>6.3f} {t / t_full:>6.3f} {lw['regions']:>8}")
        fcn.tile, fcn.whole_when_cheaper = fcn_engine.TILE, True
    if not a.no_cascade:
        cascade_part(a, models, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    if "exact" in result and "fcn" in result:
        e, f = result["exact"], result["fcn"]
        print(
            f"RESULT exact_work={e['work']:.3f} exact_time={e['time']:.3f} fcn_work={f['work']:.3f} fcn_time={f['time']:.3f}"
        )
    return 0


def nuclei_image(tmp: Path, size: int) -> np.ndarray:
    """A generated nuclei image of ``size`` x ``size`` (H x W x 3 float32, as the cascade loads it)."""
    folder = tmp / f"img{size}"
    path = nuclei.make_cohort(folder, n_patients=1, size=size, seed=size)[0]
    return load_image(path).astype(np.float32)


def cascade_part(a: argparse.Namespace, models, tmp: Path) -> None:
    """Part 3: naive against the cascade on the demo's test images."""
    mode = a.cascade_mode or demo_mode(a.work)
    print(f"\n3. the cascade on the demo's test images ({mode} engine, runs side by side image by image)")
    if models is None:
        print(f"   skipped: no fold-{a.fold} level models in {a.work} (run `make demo-radhical` first)")
        return
    summary = json.loads((a.work / "summary.json").read_text()) if (a.work / "summary.json").is_file() else {}
    by_patient = nuclei.images_by_patient(a.work / "generated_cohort")
    names = summary.get("test")
    if names:
        images = [i for imgs in by_patient.values() for i in imgs if i.name in names]
    else:
        parents = lists.read_names(a.work / "lists" / f"test_w32_parent_{a.fold}.txt")
        images = [i for p in parents for i in by_patient.get(p, [])]
    if not images:
        print(f"   skipped: no test images of fold {a.fold} found in {a.work}")
        return
    thresholds = {"published": cascade.PUBLISHED}
    search = a.work / "search" / "search.json"
    if search.is_file():
        from pipeline.usecases.radhical.search import chosen

        thresholds["searched"] = chosen(json.loads(search.read_text()))
    rows = run_cascade(models, images, thresholds, tmp / "cascade", mode, a.gpu)
    naive = rows[0]
    nv_w = naive["levels"][1]["windows"]
    nv_t = naive["levels"][1]["tiles"][1] or float("nan")  # exact: no tiles
    used = ", ".join(f"{k} {t.text()}" for k, t in thresholds.items())
    print(f"   {len(images)} image(s): {', '.join(i.name for i in images)}; thresholds {used}")
    print(
        f"{'run':<10} {'level':>5} {'windows':>9} {'tiles':>9} {'seconds':>8} {'net s':>7} {'ms/window':>9} "
        f"{'windows':>8} {'tiles':>6} {'time':>6}"
    )
    for r in rows:
        tot_w = sum(v["windows"] for v in r["levels"].values())
        tot_t = sum(v["tiles"][0] for v in r["levels"].values())
        tot_s = sum(v["seconds"] for v in r["levels"].values())
        for lv, v in r["levels"].items():
            msw = 1000 * v["seconds"] / v["windows"] if v["windows"] else float("nan")
            print(
                f"{r['run']:<10} {lv:>5} {v['windows']:>9,} {v['tiles'][0]:>4}/{v['tiles'][1]:<4} {v['seconds']:>8.2f} "
                f"{v['engine']:>7.2f} {msw:>9.3f}"
            )
        print(
            f"{r['run']:<10} {'all':>5} {tot_w:>9,} {tot_t:>9} {tot_s:>8.2f} {'':>7} {'':>9} "
            f"{tot_w / nv_w:>8.3f} {tot_t / nv_t:>6.3f} {tot_s / sum(v['seconds'] for v in naive['levels'].values()):>6.3f}"
        )
    print(
        "   fractions: of the naive run's windows (one per pixel), of its fcn tiles (tiles x levels asked, "
        "each level's own tile grid) and of its wall time (all levels: reading, resizing, selecting, the net, writing)"
    )
    nv_s = sum(v["seconds"] for v in naive["levels"].values())
    for r in rows[1:]:  # the engine's own work: windows (exact), tiles (fcn)
        work = sum(v["tiles"][0] if mode == "fcn" else v["windows"] for v in r["levels"].values())
        whole = nv_t if mode == "fcn" else nv_w
        secs = sum(v["seconds"] for v in r["levels"].values())
        print(f"CASCADE {r['run']} engine={mode} work_saved={1 - work / whole:.3f} time_saved={1 - secs / nv_s:.3f}")


if __name__ == "__main__":
    sys.exit(main())
