"""Which patients train, validate and are tested: the original 90/10 split, or a use-case-2 fold.

- ``original`` (make_hdf5.py): ``ShuffleSplit(n_splits=1, test_size=.1).split(files)``; the
  original split images (assuming one per patient) with no seed (quirk Q1), so its split cannot be
  reproduced. Here the same ShuffleSplit runs over the sorted patient IDs with ``random_state=seed``
  and each patient takes all its images: the same as the original's for one image per patient.
  Validation = the held-out 10%; they are also the images the output stage scores.
- ``uc2-fold K``: the folds of use case 2 (:func:`pipeline.folds.assign_folds` over the same
  patients with the same seed), so the U-Net trains on exactly the patients Caffe's fold K trains on
  and is tested on fold K's patients. Validation (best-model selection, and the threshold of the
  "P >= threshold" row) = the patients of fold K % 5 + 1, which use case 2 also uses to pick its
  threshold. By default they are held out of training (as the original's 10% were; the side by side
  holds them out of Caffe's training too); ``val_in_training`` (``--val-in-training``) trains on them
  as well, as use case 2's published protocol did (train = every patient outside fold K): then the
  best epoch is picked on patients the model trained on (optimistic).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import folds

UC2_FOLDS = 5


@dataclass(frozen=True)
class Split:
    """Patient IDs of each role."""

    mode: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"mode": self.mode, "train": list(self.train), "val": list(self.val), "test": list(self.test)}


def original_split(patients: list[str], seed: int, test_size: float = 0.1) -> Split:
    """make_hdf5.py's ShuffleSplit over patients, seeded: train, and val = test = the held-out ones."""
    from sklearn.model_selection import ShuffleSplit

    pts = sorted(patients)
    if len(pts) < 2:
        raise ValueError(f"{len(pts)} patient(s): the 90/10 split needs at least 2")
    tr, te = next(iter(ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(pts)))
    val = tuple(pts[i] for i in sorted(te))
    return Split("original", tuple(pts[i] for i in sorted(tr)), val, val)


def uc2_fold_split(patients: list[str], fold: int, seed: int, val_in_training: bool = False) -> Split:
    """Use case 2's fold ``fold`` (1-based): ``patients`` must be listed as use case 2 lists them
    (``Epithelium.images_by_patient`` order) for the same assignment. Validation = fold
    ``fold % 5 + 1``, held out of training unless ``val_in_training``."""
    if not 1 <= fold <= UC2_FOLDS:
        raise ValueError(f"uc2 fold {fold} is not 1..{UC2_FOLDS}")
    assignment = folds.assign_folds(list(patients), UC2_FOLDS, seed)
    vk = fold % UC2_FOLDS + 1
    out = (fold,) if val_in_training else (fold, vk)
    return Split(
        f"uc2-fold {fold}" + (" (validation in training)" if val_in_training else ""),
        tuple(p for p in patients if assignment[p] not in out),
        tuple(p for p in patients if assignment[p] == vk),
        tuple(p for p in patients if assignment[p] == fold),
    )


def parse(text: str) -> tuple[str, int | None]:
    """``--split`` text: "original" or "uc2-fold K"/"uc2-fold=K"; ValueError otherwise."""
    t = text.strip().replace("=", " ")
    if t == "original":
        return "original", None
    parts = t.split()
    if len(parts) == 2 and parts[0] == "uc2-fold" and parts[1].isdigit():
        return "uc2-fold", int(parts[1])
    raise ValueError(f"--split {text!r}: use 'original' or 'uc2-fold K' (K = 1..{UC2_FOLDS})")
