"""Patient-level k-fold cross-validation (step 2 of use cases 1-5), pure functions.

The original used MATLAB ``crossvalind('Kfold', npatients, 5)`` (unseeded: its folds cannot be
reproduced). Here fold of patient i = (p[i] mod k) + 1 with p = RandomState(seed).permutation(n):
balanced fold sizes like crossvalind's, deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline import artefacts, lists


def patient_of(name: str) -> str:
    """Patient ID: the part of a file name before its first underscore."""
    return Path(name).name.split("_", 1)[0]


def assign_folds(patients: Sequence[str], k: int = 5, seed: int = 1) -> dict[str, int]:
    """Fold (1..k) of each patient; every fold gets floor or ceil of n/k patients."""
    n = len(patients)
    if n < k:
        raise ValueError(f"{n} patients cannot be split into {k} folds")
    perm = np.random.RandomState(seed).permutation(n)
    return {p: int(perm[i] % k) + 1 for i, p in enumerate(patients)}


def write_fold_lists(
    out_dir: Path, patients: Sequence[str], per_patient: dict[str, list[lists.Entry]], folds: dict[str, int], k: int = 5
) -> None:
    """train/test_w32_<fold>.txt (space-separated, as the common step 2 wrote them) and
    train/test_w32_parent_<fold>.txt (patient IDs), patients in the given order."""
    for fold in range(1, k + 1):
        side = {"train": [], "test": []}
        parents = {"train": [], "test": []}
        for p in patients:
            s = "test" if folds[p] == fold else "train"
            side[s] += per_patient.get(p, [])
            parents[s].append(p)
        for s in ("train", "test"):
            lists.write_list(Path(out_dir) / artefacts.patch_list(s, fold), side[s], sep=" ")
            lists.write_names(Path(out_dir) / artefacts.parent_list(s, fold), parents[s])
