"""The reference's numbers, fast: each window once plus its mirror, in large batches."""

from __future__ import annotations

import numpy as np

from pipeline.classify import PatchClassifier
from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.geometry import HW, mask_coords, pad, windows, windows_at


class ExactEngine(Engine):
    """The mean of each window's and its mirror's probabilities (what the reference's 10
    oversampled inputs average to), windows cut as numpy views, batches through the reshaped
    deploy net (|dP| to the reference <= 1e-5)."""

    name = "exact"
    context = HW  # the 32x32 window: rows r-16 .. r+15

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy, gpu=self.gpu)

    def run(self, img: np.ndarray, opts: Options, progress: Progress | None = None) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        self.clf.batch = opts.batch
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        if opts.mask is not None:  # only the masked windows, in batches
            rr, cc = mask_coords(opts.mask, (h, w))
            for s in range(0, len(rr), opts.batch):
                out[rr[s : s + opts.batch], cc[s : s + opts.batch]] = self.clf.predict(
                    windows_at(p, rr[s : s + opts.batch], cc[s : s + opts.batch])
                )
                if progress is not None:
                    progress(len(rr[s : s + opts.batch]))
            return out
        rows, cols = self.computed(h, w, opts)
        per_chunk = max(1, opts.batch // max(1, len(cols)))
        for s in range(0, len(rows), per_chunk):
            rr = rows[s : s + per_chunk]
            win = windows(p, rr, cols)
            out[np.ix_(rr, cols)] = self.clf.predict(win).reshape(len(rr), len(cols), -1)
            if progress is not None:
                progress(len(rr) * len(cols))
        return out
