"""Net surgery of the same weights into a fully convolutional net, run on the whole padded image.

Its numbers differ from the original's (measured in the README): each window's convolutions no
longer see zero padding at the window border, pooling at the window's edge covers neighbours, and
the per-channel mean replaces the per-pixel mean image.
"""

from __future__ import annotations

import numpy as np

from pipeline import templates
from pipeline.caffe_env import import_caffe
from pipeline.classify import PatchClassifier
from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.geometry import HW, mask_coords, pad

#: Context computed around a mask's bounding box (pixels), beyond the net's reach at a window's edge.
#: Kept at the 48 px the mask tests were measured with (to float precision, 2e-6), more than
#: :attr:`FCNEngine.context` (37 px, which the whole-slide tiles use and is exact there). Using
#: ``self.context`` here would do less work but is not yet tested for masks: left for later.
MASK_MARGIN = 48


class FCNEngine(Engine):
    """Net surgery into a fully convolutional net, run on the whole padded image, with layer-wise
    shift-and-stitch: conv1 once at full resolution, then each stride-2 pooling is run at its two
    offsets per axis (4, 16, 64 branches), so every window position gets a value with no layer
    computed twice for the same input. The window with top-left t = a1 + 2 a2 + 4 a3 + 8 i comes
    from offsets (a1, a2, a3) at pool1, pool2, pool3."""

    name = "fcn"
    #: The fully convolutional net sees beyond the window: ip1 (4x4 on pool3) covers conv3 rows 0..8 of
    #: the window, which with the 5x5 convolutions and 3x3/2 poolings reach input rows -14 .. +52 of
    #: the window's top row, i.e. r-30 .. r+36 for pixel r; the mirrored pass reaches c-37 .. c+29.
    context = 37
    mask_work = "bbox"

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._caffe = import_caffe()
        clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy, gpu=self.gpu)
        src = clf.net
        self.channel_mean = clf.mean.mean(axis=(1, 2))
        self.stages = []
        for stage, channels in ((1, 3), (2, 32), (3, 32), (4, 64)):
            path = self.net_dir / f"fcn_stage{stage}_{self.n_out}{'_dropout' if self.dropout else ''}.prototxt"
            templates.write_if_changed(
                path,
                templates.render(
                    "fcn_stage.prototxt.j2",
                    stage=stage,
                    channels=channels,
                    height=64,
                    width=64,
                    dropout=self.dropout,
                    num_output=self.n_out,
                ),
            )
            self.stages.append(self._caffe.Net(str(path), self._caffe.TEST))
        for net in self.stages:
            for name, blobs in net.params.items():
                srcname = name.replace("-conv", "")
                for i, b in enumerate(blobs):
                    b.data.flat = src.params[srcname][i].data.flat

    def _forward(self, stage: int, x: np.ndarray) -> np.ndarray:
        net = self.stages[stage - 1]
        blob = net.blobs["data"]
        if blob.data.shape[1:] != x.shape:
            blob.reshape(1, *x.shape)
            net.reshape()
        blob.data[0] = x
        return net.forward()[net.outputs[0]][0].copy()

    def _dense(self, x: np.ndarray, offs_y, offs_x) -> np.ndarray:
        """Window probabilities at the top-left positions ``offs + 8k`` of a preprocessed padded image
        x (3 x Hp x Wp): (Hp-31) x (Wp-31) x classes, NaN where not computed."""
        _, hp, wp = x.shape
        out = np.full((hp - 2 * HW + 1, wp - 2 * HW + 1, self.n_out), np.nan, dtype=np.float32)
        bits = lambda offs, k: sorted({(o >> k) & 1 for o in offs})  # noqa: E731
        # a branch whose input is too small (pooling needs 2 rows; pool3 + the 4x4 ip1 need 8) is skipped:
        # Caffe aborts the process on empty blobs
        fits = lambda a, need: a.shape[1] >= need and a.shape[2] >= need  # noqa: E731
        c1 = self._forward(1, x)
        for a1 in bits(offs_y, 0):
            for b1 in bits(offs_x, 0):
                if not fits(c1[:, a1:, b1:], 2):
                    continue
                c2 = self._forward(2, c1[:, a1:, b1:])
                for a2 in bits(offs_y, 1):
                    for b2 in bits(offs_x, 1):
                        if not fits(c2[:, a2:, b2:], 2):
                            continue
                        c3 = self._forward(3, c2[:, a2:, b2:])
                        for a3 in bits(offs_y, 2):
                            for b3 in bits(offs_x, 2):
                                if not fits(c3[:, a3:, b3:], 8):
                                    continue
                                prob = self._forward(4, c3[:, a3:, b3:]).transpose(1, 2, 0)
                                ys = a1 + 2 * a2 + 4 * a3 + 8 * np.arange(prob.shape[0])
                                xs = b1 + 2 * b2 + 4 * b3 + 8 * np.arange(prob.shape[1])
                                okr, okc = ys < out.shape[0], xs < out.shape[1]
                                out[np.ix_(ys[okr], xs[okc])] = prob[np.ix_(okr, okc)]
        return out

    def _region(self, x: np.ndarray, h: int, w: int, oy, ox, oxm) -> np.ndarray:
        """Window-and-mirror probabilities (h x w x classes, NaN where not computed) of the h x w
        image whose padded, preprocessed form is x (3 x h+32 x w+32)."""
        wp = x.shape[2]
        dense = self._dense(x, oy, ox)[:h, :w]
        # the mirror of the window at column c starts at column (Wp - 32 - c) of the flipped image
        mirrored = self._dense(np.ascontiguousarray(x[:, :, ::-1]), oy, oxm)
        mir = mirrored[:h, wp - 2 * HW - np.arange(w)]
        return (dense + mir) / np.float32(2)

    def run(self, img: np.ndarray, opts: Options, progress: Progress | None = None) -> np.ndarray:
        h, w = img.shape[:2]
        p = pad(img)
        x = (p.transpose(2, 0, 1)[::-1] * np.float32(255) - self.channel_mean[:, None, None]).astype(np.float32)
        out = np.zeros((h, w, self.n_out), dtype=np.float32)
        if opts.mask is not None:
            return self._run_masked(x, h, w, opts.mask, out, progress)
        if opts.stride == 8:  # one branch: the computed grid is the net's own 8-pixel grid
            off = 0 if opts.all_pixels else 1
            oy, ox, oxm = [off], [off], [(w - off) % 8]
        else:  # every offset 0..7 on both axes
            oy = ox = oxm = list(range(8))
        prob = self._region(x, h, w, oy, ox, oxm)
        rows, cols = self.computed(h, w, opts)
        out[np.ix_(rows, cols)] = prob[np.ix_(rows, cols)]
        if progress is not None:  # one pass over the whole image: the windows come at once
            progress(len(rows) * len(cols))
        return np.nan_to_num(out)

    def _run_masked(
        self, x: np.ndarray, h: int, w: int, mask: np.ndarray, out: np.ndarray, progress: Progress | None = None
    ) -> np.ndarray:
        """Clusters of masked pixels (closer than 2 x :data:`MASK_MARGIN`) are computed box by box,
        each box the cluster's bounding box widened by the margin (the net's receptive field reaches
        about 18 px beyond a window; pooling edges a few more): the masked pixels get the whole
        image's values to float precision (tested), and the work scales with the boxes' area."""
        from scipy.ndimage import find_objects, label, maximum_filter

        mask_coords(mask, (h, w))  # shape check
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return out
        near = maximum_filter(mask, size=2 * MASK_MARGIN + 1, mode="constant")
        clusters, _ = label(near)
        offs = list(range(8))
        for i, sl in enumerate(find_objects(clusters), start=1):
            sub = mask[sl] & (clusters[sl] == i)
            rr, cc = np.nonzero(sub)
            rr, cc = rr + sl[0].start, cc + sl[1].start
            r0, r1 = max(0, rr.min() - MASK_MARGIN), min(h, rr.max() + 1 + MASK_MARGIN)
            c0, c1 = max(0, cc.min() - MASK_MARGIN), min(w, cc.max() + 1 + MASK_MARGIN)
            prob = self._region(
                np.ascontiguousarray(x[:, r0 : r1 + 2 * HW, c0 : c1 + 2 * HW]), r1 - r0, c1 - c0, offs, offs, offs
            )
            out[rr, cc] = np.nan_to_num(prob[rr - r0, cc - c0])
            if progress is not None:
                progress(len(rr))
        return out
