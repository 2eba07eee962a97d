"""Benchmark: RADHicaL's cascade against the naive level-1 run, same images, same trained level models.

For each engine (exact by default: the original's numbers; add fcn with --modes exact,fcn), the
naive run (the level-1 model on every pixel, ``-b``) and the cascade (published thresholds, or
--lower/--upper) are computed afresh in a temporary folder (nothing reused), one after the other
on the same crops of the test images, and the table gives windows computed and wall time (total,
and the net's share) with their ratios to the naive run. The cascade's time saving follows its
window saving when the engine's cost is per window (exact); what it adds per level (resizing,
selecting, PNG writing, four nets) is in the "other" column.

The level models come from a RADHicaL work folder (default runs/demo-radhical: `make demo-radhical`
makes it; when its models are missing they are trained first with the demo's settings).

    python bench/radhical.py [--work runs/demo-radhical] [--crop 200] [--images 2] [--modes exact,fcn]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import REPO_ROOT, lists, nuclei  # noqa: E402
from pipeline.usecases.radhical import cascade  # noqa: E402


def densest_crop(image: Path, size: int, out_dir: Path) -> Path:
    """The size x size crop (on a 10-px grid) holding the most annotated nucleus pixels, saved with
    its mask under the original names."""
    arr = np.asarray(Image.open(image))
    mask = nuclei.read_mask(nuclei.mask_path(image)).values > 0
    size = min(size, arr.shape[0], arr.shape[1])
    best, at = -1, (0, 0)
    for r in range(0, arr.shape[0] - size + 1, 10):
        for c in range(0, arr.shape[1] - size + 1, 10):
            n = int(mask[r : r + size, c : c + size].sum())
            if n > best:
                best, at = n, (r, c)
    r, c = at
    out = out_dir / image.name
    Image.fromarray(arr[r : r + size, c : c + size]).save(out)
    Image.fromarray(mask[r : r + size, c : c + size]).convert("1").save(nuclei.mask_path(out))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "runs" / "demo-radhical")
    ap.add_argument(
        "--crop", type=int, default=200, help="crop each test image to this size (exact: ~0.1 s a window on 2 cores)"
    )
    ap.add_argument("--images", type=int, default=2, help="how many of the fold's test images")
    ap.add_argument("--modes", default="exact", help="engines, comma-separated (exact, fcn, reference)")
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--lower", default=",".join(f"{v:g}" for v in cascade.PUBLISHED.lower))
    ap.add_argument("--upper", default=",".join(f"{v:g}" for v in cascade.PUBLISHED.upper[1:]))
    ap.add_argument("--gpu", action="store_true")
    a = ap.parse_args()
    summary = a.work / "summary.json"
    if not summary.is_file():
        print(f"{a.work}: no RADHicaL run there; training the demo's level models first (minutes)", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "demo-radhical",
                "--work",
                str(a.work),
                "--stages",
                "patches,folds,dbs,prototxt,train",
            ],
            cwd=REPO_ROOT,
            check=True,
        )
    iterations = json.loads((a.work / "summary.json").read_text()).get("iterations")
    models = None
    for cand in sorted((a.work / "models").glob(f"{a.fold}_1_caffenet_train_w32_iter_*.caffemodel")):
        it = int(cand.stem.rsplit("_", 1)[1])
        if iterations is None or it == iterations:
            models = cascade.level_models(a.work, a.fold, it)
    if models is None:
        print(f"{a.work}/models: no fold-{a.fold} level models")
        return 1
    cascade.check_models(models, (1, 2, 3, 4))
    thresholds = cascade.Thresholds.parse(a.lower, a.upper)
    by_patient = nuclei.images_by_patient(a.work / "generated_cohort") if (a.work / "generated_cohort").is_dir() else {}
    parents = lists.read_names(a.work / "lists" / f"test_w32_parent_{a.fold}.txt")
    images = [i for p in parents for i in by_patient.get(p, [])][: a.images]
    if not images:
        print(f"{a.work}: no test images of fold {a.fold} found")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench_radhical_"))
    crops = [densest_crop(i, a.crop, tmp) for i in images]
    rows = []
    for mode in a.modes.split(","):
        root = tmp / mode
        casc = cascade.Cascade(models, cascade.Options(mode=mode, gpu=a.gpu), root, root / "nets", show_progress=False)
        casc.engine(1)  # net set-up outside the timing
        for lv in (2, 3, 4):
            casc.engine(lv)
        for name, t, levels in (("naive", None, (1,)), ("cascade", thresholds, (4, 3, 2, 1))):
            t0 = time.perf_counter()
            res = casc.run(crops, name, t, levels=levels)
            wall = time.perf_counter() - t0
            st = [s for per in res.images.values() for s in per.values()]
            rows.append(
                {
                    "mode": mode,
                    "run": name,
                    "windows": sum(s["computed"] for s in st),
                    "wall": wall,
                    "net": sum(s["engine_seconds"] for s in st),
                    "per_level": {lv: sum(res.images[i.name[:-4]][lv]["computed"] for i in crops) for lv in levels},
                }
            )
    device = "GPU" if a.gpu else f"CPU ({platform.processor() or platform.machine()})"
    print(
        f"\nRADHicaL cascade vs naive level-1 run: {len(crops)} crop(s) of {a.crop}x{a.crop} from {a.work}, "
        f"fold-{a.fold} level models, thresholds {thresholds.text()}, {device}"
    )
    print(
        f"{'engine':<8} {'run':<8} {'windows':>9} {'L4/L3/L2/L1':>24} {'wall s':>8} {'net s':>8} {'other s':>8} "
        f"{'windows ratio':>13} {'time ratio':>10}"
    )
    for r in rows:
        base = next(b for b in rows if b["mode"] == r["mode"] and b["run"] == "naive")
        per = "/".join(str(r["per_level"].get(lv, "-")) for lv in (4, 3, 2, 1))
        print(
            f"{r['mode']:<8} {r['run']:<8} {r['windows']:>9} {per:>24} {r['wall']:>8.1f} {r['net']:>8.1f} "
            f"{r['wall'] - r['net']:>8.1f} {r['windows'] / base['windows']:>13.3f} {r['wall'] / base['wall']:>10.3f}"
        )
    res = {r["mode"]: r for r in rows if r["run"] == "cascade"}
    naive = {r["mode"]: r for r in rows if r["run"] == "naive"}
    print(
        "RESULT "
        + " ".join(
            f"{m}_windows_ratio={res[m]['windows'] / naive[m]['windows']:.3f} "
            f"{m}_time_ratio={res[m]['wall'] / naive[m]['wall']:.3f}"
            for m in res
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
