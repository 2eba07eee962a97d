"""The original loop through caffe.Classifier (oversampling), row by row: the oracle, slow on purpose."""

from __future__ import annotations

import numpy as np

from pipeline.caffe_env import import_caffe, set_mode
from pipeline.classify import check_model
from pipeline.databases import read_mean
from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.geometry import HW, mask_coords, pad


class ReferenceEngine(Engine):
    """common/step5_create_output_images_kfold.py: ``caffe.Classifier.predict`` (10 inputs per
    window) on each computed row's windows."""

    name = "reference"
    context = HW  # the 32x32 window: rows r-16 .. r+15

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        caffe = import_caffe()
        set_mode(self.gpu)
        check_model(self.deploy, self.model)  # Caffe would abort the process on a mismatch
        means = read_mean(self.mean_path, shape=(3, 32, 32))
        self.net = caffe.Classifier(
            str(self.deploy), str(self.model), mean=means, channel_swap=(2, 1, 0), raw_scale=255, image_dims=(32, 32)
        )

    def run(self, img: np.ndarray, opts: Options, progress: Progress | None = None) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        if opts.mask is not None:  # create_output_image_vector.py: the mask's windows, 8192 a call
            rr, cc = mask_coords(opts.mask, (h, w))
            for s in range(0, len(rr), 8192):
                patches = [p[r : r + 2 * HW, c : c + 2 * HW, :] for r, c in zip(rr[s : s + 8192], cc[s : s + 8192])]
                out[rr[s : s + 8192], cc[s : s + 8192]] = self.net.predict(patches)
                if progress is not None:
                    progress(len(patches))
            return out
        rows, cols = self.computed(h, w, opts)
        for r in rows:
            patches = [p[r : r + 2 * HW, c : c + 2 * HW, :] for c in cols]
            out[r, cols] = self.net.predict(patches)
            if progress is not None:
                progress(len(cols))
        return out
