"""The reference's numbers, fast: each window once plus its mirror, in large batches of one fixed shape."""

from __future__ import annotations

import numpy as np

from pipeline.classify import PatchClassifier
from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.geometry import HW, mask_coords, pad, windows, windows_at

#: Windows per forward are rounded up to a multiple of this, so that a call's forward shape (its
#: windows and their mirrors) is set once and its last chunk padded by fewer than this many windows.
ROUND = 16


class ExactEngine(Engine):
    """The mean of each window's and its mirror's probabilities (what the reference's 10
    oversampled inputs average to), windows cut as numpy views.

    Each call shapes the deploy net once to 2 x B inputs (B windows and their B mirrors; B: the
    call's windows shared evenly among the fewest forwards of at most half of ``Options.batch``
    windows, rounded up to :data:`ROUND`, :meth:`forward_batch`) and feeds it chunks of B windows,
    the last chunk padded with zeros: no reshape per short batch and little padding, so the cost
    follows the windows asked for (|dP| to the reference <= 1e-5)."""

    name = "exact"
    context = HW  # the 32x32 window: rows r-16 .. r+15

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy, gpu=self.gpu)

    @staticmethod
    def forward_batch(n: int, batch: int) -> int:
        """Windows per forward for a call of ``n`` windows: the fewest forwards of at most ``batch``
        windows (k = ceil(n / batch)), shared evenly (ceil(n / k) rounded up to :data:`ROUND`, at most
        ``batch``), so the padded last chunk wastes fewer than ROUND x k windows (e.g. 6,345 windows,
        batch 1024: 7 forwards of 912, not 7 of 1024 with 823 padded)."""
        n, batch = max(1, int(n)), max(1, int(batch))
        forwards = -(-n // batch)
        share = -(-n // forwards)  # windows per forward, before rounding
        return max(1, min(batch, -(-share // ROUND) * ROUND))

    def classify(self, win: np.ndarray, batch: int, progress: Progress | None = None) -> np.ndarray:
        """Probabilities (N x classes) of N windows (N x 32 x 32 x 3 RGB [0, 1], views allowed):
        the mean of the window's and its mirror's softmax, ``batch`` windows per forward (the net
        shaped to 2 x batch inputs, reshaped only when ``batch`` changes; the last chunk padded)."""
        n, b = len(win), int(batch)
        out = np.empty((n, self.n_out), dtype=np.float32)
        if n == 0:
            return out
        net, clf = self.clf.net, self.clf
        blob = net.blobs[clf.in_name]
        if blob.data.shape != (2 * b, 3, 2 * HW, 2 * HW):
            blob.reshape(2 * b, 3, 2 * HW, 2 * HW)
            net.reshape()
        data = blob.data
        for s in range(0, n, b):
            chunk = np.asarray(win[s : s + b], dtype=np.float32)
            m = len(chunk)
            data[:m] = clf.preprocess(chunk)
            data[b : b + m] = clf.preprocess(chunk[:, :, ::-1])
            if m < b:  # the last chunk: the rest of the fixed shape holds zeros (their outputs are dropped)
                data[m:b] = 0
                data[b + m :] = 0
            res = net.forward()[clf.out_name].reshape(2 * b, -1)
            out[s : s + m] = (res[:m] + res[b : b + m]) / np.float32(2)
            if progress is not None:
                progress(m)
        return out

    def run(self, img: np.ndarray, opts: Options, progress: Progress | None = None) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        if opts.mask is not None:  # only the masked windows
            rr, cc = mask_coords(opts.mask, (h, w))
            b = self.forward_batch(len(rr), max(1, opts.batch // 2))
            for s in range(0, len(rr), b):  # cut b windows at a time (copies), one fixed-shape forward each
                r, c = rr[s : s + b], cc[s : s + b]
                out[r, c] = self.classify(windows_at(p, r, c), b, progress)
            return out
        rows, cols = self.computed(h, w, opts)
        per_chunk = max(1, (opts.batch // 2) // max(1, len(cols)))
        b = min(per_chunk, len(rows)) * len(cols)  # whole rows per forward; only the last chunk is short
        for s in range(0, len(rows), per_chunk):
            rr = rows[s : s + per_chunk]
            out[np.ix_(rr, cols)] = self.classify(windows(p, rr, cols), b, progress).reshape(len(rr), len(cols), -1)
        return out
