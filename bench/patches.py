"""Benchmark: use-case-6 patch extraction (crop variant, PNG written) and DB building.

Generates 50x50 H&E-like inputs, then times `run_patches` with 1 worker (baseline) and with all
cores, and convert_imageset + compute_image_mean on the result. Prints a table; figures are ratios
against the 1-worker baseline measured in the same command.

    python bench/patches.py [--patients 24] [--per-class 250 125]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import databases, lists  # noqa: E402
from pipeline.usecases.idc import dataset, patches, runner  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=24)
    ap.add_argument("--per-class", type=int, nargs=2, default=(250, 125))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_patches_"))
    try:
        root = tmp / "data"
        dataset.make_cohort(
            root, n_patients=a.patients, per_class=tuple(a.per_class), seed=0, split=(a.patients - 4, 2, 2)
        )
        rows = []
        cores = os.cpu_count() or 1
        for jobs in (1, cores):
            work = tmp / f"work{jobs}"
            t = time.perf_counter()
            rep = patches.run_patches(root, work, "crop", split_dir=root, jobs=jobs, show_progress=False)
            dt = time.perf_counter() - t
            n = rep["written"]
            rows.append((f"patches, crop, {jobs} worker(s)", n, dt))
        work = tmp / f"work{cores}"
        space = runner.stage_lists(work)
        n_train = len(lists.read_list(space["train"]))
        t = time.perf_counter()
        databases.build_db(work / "subs", space["train"], work / "DB_train_1", seed=1)
        rows.append(("convert_imageset (leveldb)", n_train, time.perf_counter() - t))
        t = time.perf_counter()
        databases.compute_mean(work / "DB_train_1", work / "mean.binaryproto")
        rows.append(("compute_image_mean", n_train, time.perf_counter() - t))
        base = rows[0][1] / rows[0][2]
        print(f"\n{'stage':<34} {'items':>8} {'seconds':>8} {'items/s':>9} {'vs 1 worker':>11}")
        for name, n, dt in rows:
            print(f"{name:<34} {n:>8} {dt:>8.2f} {n / dt:>9.0f} {n / dt / base:>10.2f}x")
        print(f"\nmachine: {cores} cores; inputs: {a.patients} generated patients x {tuple(a.per_class)} 50x50 PNGs")
        print(f"RESULT patches_per_s={rows[1][1] / rows[1][2]:.0f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
