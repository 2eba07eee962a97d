"""Use case 6 data: the IDC archive, its PATIENT/{0,1}/*.png layout, the published patient split,
and a generated IDC-like cohort for demos and tests (clearly not real tissue)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import RESOURCE_DIR, lists
from pipeline import data as data_sets
from pipeline.export import Spec
from pipeline.synth import he_patch
from pipeline.usecases import datasets

log = logging.getLogger(__name__)

#: The archive's name (users put it there by hand offline); URL and layout: ``datasets.IDC``.
IDC_ZIP = datasets.IDC.name
CASES = ("train", "val", "test")
#: Its results for QuPath (``python -m pipeline export``): a square per patch at the place its name
#: gives, named after its predicted class (issue 29).
EXPORT = Spec("patches", "IDC", (220, 0, 0), "tile", other_name="Non-IDC", other_color=(0, 160, 0))


def split_file(case: str) -> Path:
    """The shipped cases_<case>.txt of the published split."""
    return RESOURCE_DIR / "uc6-idc" / f"cases_{case}.txt"


def load_split(split_dir: Path | None = None) -> dict[str, list[str]]:
    """Patient IDs per case ("train", "val", "test") from cases_*.txt (shipped ones by default)."""
    out = {}
    for case in CASES:
        path = (Path(split_dir) / f"cases_{case}.txt") if split_dir else split_file(case)
        out[case] = lists.read_names(path)
    return out


def prepare_idc(data: Path, cache: Path) -> Path:
    """The patient root (the folder of PATIENT/{0,1}/ folders) of the IDC data given as the zip
    (checked and extracted once under ``cache``) or a folder, in the original zip's layout or the
    Kaggle mirror's (whose extra patient folders are simply not in the split lists).

    Raises FileNotFoundError naming what was looked for when there is none.
    """
    return data_sets.prepare(data, cache, (datasets.IDC,), fetch_hint="python -m pipeline data fetch idc --dest DIR")


def make_cohort(
    root: Path,
    n_patients: int = 12,
    per_class: tuple[int, int] = (60, 30),
    seed: int = 0,
    first_id: int = 90001,
    split: tuple[int, int, int] = (7, 2, 3),
) -> dict[str, list[str]]:
    """Write a generated IDC-like cohort under ``root`` and its cases_{train,val,test}.txt.

    Layout and names as the dataset: ROOT/PATIENT/{0,1}/<patient>_idx5_x<X>_y<Y>_class<C>.png,
    50x50 RGB (:func:`pipeline.synth.he_patch`). Returns the split {case: [patient ids]}.
    Deterministic for a given seed.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.RandomState(seed)
    ids = [str(first_id + i) for i in range(n_patients)]
    for pid in ids:
        for label in (0, 1):
            d = root / pid / str(label)
            d.mkdir(parents=True, exist_ok=True)
            for j in range(per_class[label]):
                x, y = 1 + 50 * (j % 20), 1 + 50 * (j // 20) + 1000 * label
                patch = he_patch(rng, label)
                Image.fromarray(patch).save(d / f"{pid}_idx5_x{x}_y{y}_class{label}.png")
    n_train, n_val, _ = split
    out = {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}
    for case, pids in out.items():
        lists.write_names(root / f"cases_{case}.txt", pids)
    log.info("generated IDC cohort: %d patients x %s patches in %s (not real tissue)", n_patients, per_class, root)
    return out
