"""Net surgery of the same weights into a fully convolutional net, run on the whole padded image.

Its numbers differ from the original's (measured in the README): each window's convolutions no
longer see zero padding at the window border, pooling at the window's edge covers neighbours, and
the per-channel mean replaces the per-pixel mean image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import templates
from pipeline.caffe_env import caffe_pb2, import_caffe
from pipeline.classify import PatchClassifier
from pipeline.inference.engines.base import Engine, Options, Progress
from pipeline.inference.geometry import HW, mask_coords, pad

#: Output tile of a masked run (pixels a side): the image is cut into TILE x TILE tiles, only those
#: holding masked pixels are computed, runs of neighbouring tiles together (one margin for the run).
#: Chosen by measurement (bench/radhical.py --tiles): smaller tiles follow the mask more closely but
#: pay the margin (the net's reach, 21 px a side) on more edges.
TILE = 64


def _layer_geometry(deploy: Path) -> list[tuple[int, int, int]]:
    """(kernel, stride, pad) of each spatial layer of a 32x32 patch net, input to output, with the
    first InnerProduct as a convolution over what is left of the window (the fcn's ip1)."""
    from google.protobuf import text_format

    net = caffe_pb2().NetParameter()
    text_format.Merge(Path(deploy).read_text(), net)
    size, out = 2 * HW, []
    for layer in list(net.layer) or list(net.layers):
        kind = str(layer.type).upper()
        if kind in ("CONVOLUTION", "4"):
            cp = layer.convolution_param
            k = cp.kernel_size[0] if len(cp.kernel_size) else cp.kernel_h
            st = cp.stride[0] if len(cp.stride) else 1
            pd = cp.pad[0] if len(cp.pad) else 0
            size = (size + 2 * pd - k) // st + 1
        elif kind in ("POOLING", "17"):
            pp = layer.pooling_param
            k, st, pd = pp.kernel_size, pp.stride or 1, pp.pad
            size = -(-(size + 2 * pd - k) // st) + 1  # Caffe's pooling rounds up
        elif kind in ("INNERPRODUCT", "14"):
            out.append((size, 1, 0))
            break
        else:
            continue
        out.append((k, st, pd))
    return out


def receptive_reach(deploy: Path) -> tuple[int, int]:
    """Input rows (columns) a window's output depends on in the fully convolutional net, relative
    to the window's first row: (lo, hi), e.g. (-14, 52) for the "AlexNet 32w" net (its 5x5
    convolutions and 3x3/2 poolings see beyond the 32x32 window once they run on the whole image).
    Computed from the deploy net's layers, output to input: lo <- lo*s - p, hi <- hi*s - p + k - 1."""
    lo = hi = 0
    for k, st, pd in reversed(_layer_geometry(deploy)):
        lo, hi = lo * st - pd, hi * st - pd + k - 1
    return lo, hi


def context_of(deploy: Path) -> int:
    """Image pixels a pixel's value depends on, on each side, in either pass (window and mirror):
    the pixel's window starts HW rows before it; the mirrored pass reflects the reach."""
    lo, hi = receptive_reach(deploy)
    return max(HW - lo, hi - HW, hi - (HW - 1), (HW - 1) - lo)


class FCNEngine(Engine):
    """Net surgery into a fully convolutional net, run on the whole padded image, with layer-wise
    shift-and-stitch: conv1 once at full resolution, then each stride-2 pooling is run at its two
    offsets per axis (4, 16, 64 branches), so every window position gets a value with no layer
    computed twice for the same input. The window with top-left t = a1 + 2 a2 + 4 a3 + 8 i comes
    from offsets (a1, a2, a3) at pool1, pool2, pool3.

    With a pixel mask, only the :data:`TILE` x TILE output tiles holding masked pixels are
    computed: the runs of neighbouring tiles in each tile row, merged greedily into larger boxes
    while a merge costs less than its parts (:func:`tile_plan`), each box widened by the net's reach
    (:attr:`margin`, from the deploy net) and slid inside the image at its borders; regions of the
    same shape go through the nets as one batch. When the regions would cost more than the whole image
    (their padded area is larger), the whole image is computed once instead."""

    name = "fcn"
    #: The fully convolutional net sees beyond the window: ip1 (4x4 on pool3) covers conv3 rows 0..8 of
    #: the window, which with the 5x5 convolutions and 3x3/2 poolings reach input rows -14 .. +52 of
    #: the window's top row, i.e. r-30 .. r+36 for pixel r; the mirrored pass reaches c-37 .. c+29.
    #: (Each engine recomputes it from its deploy net: :func:`context_of`.)
    context = 37
    mask_work = "tiles"

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._caffe = import_caffe()
        clf = PatchClassifier(self.model, self.mean_path, deploy=self.deploy, gpu=self.gpu)
        src = clf.net
        self.context = context_of(self.deploy)
        #: image pixels around a tile that its pixels' values depend on (the padded region adds HW)
        self.margin = self.context - HW
        self.tile = TILE
        #: compute the whole image instead when the regions would cost more (False: always the regions)
        self.whole_when_cheaper = True
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
        #: what the last masked run computed: {"tiles", "tiles_total", "regions", "whole"}
        self.last_work: dict = {}

    def _forward(self, stage: int, x: np.ndarray) -> np.ndarray:
        """Stage ``stage`` on a batch x (N x C x H x W, any view); the net is reshaped only when the shape changes."""
        net = self.stages[stage - 1]
        blob = net.blobs["data"]
        if blob.data.shape != x.shape:
            blob.reshape(*x.shape)
            net.reshape()
        blob.data[...] = x
        return net.forward()[net.outputs[0]].copy()

    def _dense(self, x: np.ndarray, offs_y, offs_x) -> np.ndarray:
        """Window probabilities at the top-left positions ``offs + 8k`` of a batch of preprocessed
        padded images x (N x 3 x Hp x Wp): N x (Hp-31) x (Wp-31) x classes, NaN where not computed."""
        n, _, hp, wp = x.shape
        out = np.full((n, hp - 2 * HW + 1, wp - 2 * HW + 1, self.n_out), np.nan, dtype=np.float32)
        bits = lambda offs, k: sorted({(o >> k) & 1 for o in offs})  # noqa: E731
        # a branch whose input is too small (pooling needs 2 rows; pool3 + the 4x4 ip1 need 8) is skipped:
        # Caffe aborts the process on empty blobs
        fits = lambda a, need: a.shape[2] >= need and a.shape[3] >= need  # noqa: E731
        c1 = self._forward(1, x)
        for a1 in bits(offs_y, 0):
            for b1 in bits(offs_x, 0):
                if not fits(c1[:, :, a1:, b1:], 2):
                    continue
                c2 = self._forward(2, c1[:, :, a1:, b1:])
                for a2 in bits(offs_y, 1):
                    for b2 in bits(offs_x, 1):
                        if not fits(c2[:, :, a2:, b2:], 2):
                            continue
                        c3 = self._forward(3, c2[:, :, a2:, b2:])
                        for a3 in bits(offs_y, 2):
                            for b3 in bits(offs_x, 2):
                                if not fits(c3[:, :, a3:, b3:], 8):
                                    continue
                                prob = self._forward(4, c3[:, :, a3:, b3:]).transpose(0, 2, 3, 1)
                                ys = a1 + 2 * a2 + 4 * a3 + 8 * np.arange(prob.shape[1])
                                xs = b1 + 2 * b2 + 4 * b3 + 8 * np.arange(prob.shape[2])
                                okr, okc = ys < out.shape[1], xs < out.shape[2]
                                out[:, ys[okr][:, None], xs[okc][None, :]] = prob[:, okr][:, :, okc]
        return out

    def _region(self, x: np.ndarray, h: int, w: int, oy, ox, oxm) -> np.ndarray:
        """Window-and-mirror probabilities (N x h x w x classes, NaN where not computed) of a batch of
        h x w images whose padded, preprocessed forms are x (N x 3 x h+32 x w+32)."""
        wp = x.shape[3]
        dense = self._dense(x, oy, ox)[:, :h, :w]
        # the mirror of the window at column c starts at column (Wp - 32 - c) of the flipped image
        mirrored = self._dense(np.ascontiguousarray(x[:, :, :, ::-1]), oy, oxm)
        mir = mirrored[:, :h, wp - 2 * HW - np.arange(w)]
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
        prob = self._region(x[None], h, w, oy, ox, oxm)[0]
        rows, cols = self.computed(h, w, opts)
        out[np.ix_(rows, cols)] = prob[np.ix_(rows, cols)]
        if progress is not None:  # one pass over the whole image: the windows come at once
            progress(len(rows) * len(cols))
        return np.nan_to_num(out)

    def _run_masked(
        self, x: np.ndarray, h: int, w: int, mask: np.ndarray, out: np.ndarray, progress: Progress | None = None
    ) -> np.ndarray:
        """The masked pixels' values, computed tile region by tile region (see the class docstring);
        they equal the whole image's to float precision (tested): each region reaches :attr:`margin`
        pixels beyond its tiles, or the image border, where the whole-image run has the same border."""
        mask_coords(mask, (h, w))  # shape check
        mask = np.asarray(mask, dtype=bool)
        plan = tile_plan(mask, self.tile, self.margin)
        self.last_work = {
            "tiles": plan.tiles_total if plan.whole and self.whole_when_cheaper else plan.tiles,
            "tiles_total": plan.tiles_total,
            "regions": len(plan.regions),
            "whole": plan.whole and self.whole_when_cheaper,
        }
        if not mask.any():
            return out
        offs = list(range(8))
        if plan.whole and self.whole_when_cheaper:
            prob = self._region(x[None], h, w, offs, offs, offs)[0]
            out[mask] = np.nan_to_num(prob[mask])
            if progress is not None:
                progress(int(mask.sum()))
            return out
        taken = np.zeros((h, w), dtype=bool)
        by_shape: dict[tuple[int, int], list[Region]] = {}
        for reg in plan.regions:
            by_shape.setdefault((reg.r1 - reg.r0, reg.c1 - reg.c0), []).append(reg)
        for (rh, rw), regs in by_shape.items():
            for s in range(0, len(regs), REGIONS_PER_BATCH):
                batch = regs[s : s + REGIONS_PER_BATCH]
                xb = np.stack([x[:, g.r0 : g.r0 + rh + 2 * HW, g.c0 : g.c0 + rw + 2 * HW] for g in batch])
                prob = self._region(xb, rh, rw, offs, offs, offs)
                done = 0
                for g, pr in zip(batch, prob):
                    sel = mask[g.tr0 : g.tr1, g.tc0 : g.tc1] & ~taken[g.tr0 : g.tr1, g.tc0 : g.tc1]
                    taken[g.tr0 : g.tr1, g.tc0 : g.tc1] |= sel  # merged boxes may overlap: each pixel once
                    rr, cc = np.nonzero(sel)
                    rr, cc = rr + g.tr0, cc + g.tc0
                    out[rr, cc] = np.nan_to_num(pr[rr - g.r0, cc - g.c0])
                    done += len(rr)
                if progress is not None:
                    progress(done)
        return out


#: Regions of one shape computed per batch (bounds the memory of conv1's output: N x 32 x H x W floats).
REGIONS_PER_BATCH = 8


@dataclass(frozen=True)
class Region:
    """Tiles [tr0, tr1) x [tc0, tc1) (image pixels) computed as the region [r0, r1) x [c0, c1) around them."""

    tr0: int
    tr1: int
    tc0: int
    tc1: int
    r0: int
    r1: int
    c0: int
    c1: int


@dataclass(frozen=True)
class TilePlan:
    """What a masked fcn run computes: ``regions`` (or the ``whole`` image), ``tiles`` of ``tiles_total``."""

    regions: tuple[Region, ...]
    tiles: int
    tiles_total: int
    whole: bool


def _span(a: int, b: int, margin: int, n: int) -> tuple[int, int]:
    """[a - margin, b + margin) slid inside [0, n) keeping its length (clipped when longer than n)."""
    length = min(n, b - a + 2 * margin)
    start = min(max(0, a - margin), n - length)
    return start, start + length


def _cost(box: np.ndarray, tile: int, margin: int, h: int, w: int) -> np.ndarray:
    """Padded input pixels of regions around tile boxes (K x 4: tile rows ty0, ty1, tile cols tx0, tx1)."""
    rh = np.minimum(h, np.minimum(h, box[..., 1] * tile) - box[..., 0] * tile + 2 * margin)
    rw = np.minimum(w, np.minimum(w, box[..., 3] * tile) - box[..., 2] * tile + 2 * margin)
    return (rh + 2 * HW) * (rw + 2 * HW)


#: Time per padded input pixel of region passes against one whole-image pass (more forwards on
#: smaller blobs, a reshape per region shape): measured about 1.1 (bench/radhical.py, 2026-12-07:
#: level-1 regions costing 0.96 of the whole image took 1.08 of its time); the plan takes the whole
#: image when the regions' cost times this reaches it.
REGION_OVERHEAD = 1.2


def tile_plan(mask: np.ndarray, tile: int, margin: int, overhead: float = REGION_OVERHEAD) -> TilePlan:
    """The regions a masked run computes (pure): the tile x tile tiles holding masked pixels; per
    tile row the runs of consecutive such tiles; then, greedily, the two boxes whose bounding box
    costs less than both (cost: the region's padded input pixels, the box widened by ``margin``
    and 16 px of padding a side) merged, until no merge saves; each box widened by ``margin`` and
    slid inside the image. ``whole`` when the regions' cost times ``overhead`` reaches the whole
    padded image's."""
    h, w = mask.shape
    nty, ntx = -(-h // tile), -(-w // tile)
    grid = np.zeros((nty * tile, ntx * tile), dtype=bool)
    grid[:h, :w] = mask
    need = grid.reshape(nty, tile, ntx, tile).any(axis=(1, 3))
    boxes = []
    for ty in range(nty):
        row = np.concatenate([[False], need[ty], [False]])
        edges = np.flatnonzero(row[1:] != row[:-1])
        boxes += [(ty, ty + 1, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    b = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    while len(b) > 1:
        cost = _cost(b, tile, margin, h, w)
        lo = np.minimum(b[:, None, :], b[None, :, :])
        hi = np.maximum(b[:, None, :], b[None, :, :])
        merged = np.stack([lo[..., 0], hi[..., 1], lo[..., 2], hi[..., 3]], axis=-1)
        saving = cost[:, None] + cost[None, :] - _cost(merged, tile, margin, h, w)
        np.fill_diagonal(saving, -1)
        i, j = np.unravel_index(int(np.argmax(saving)), saving.shape)
        if saving[i, j] <= 0:
            break
        b = np.concatenate([np.delete(b, [i, j], axis=0), merged[i, j][None]])
    regions = []
    for ty0, ty1, tx0, tx1 in sorted(map(tuple, b.tolist())):
        tr0, tr1, tc0, tc1 = ty0 * tile, min(h, ty1 * tile), tx0 * tile, min(w, tx1 * tile)
        r0, r1 = _span(tr0, tr1, margin, h)
        c0, c1 = _span(tc0, tc1, margin, w)
        regions.append(Region(tr0, tr1, tc0, tc1, r0, r1, c0, c1))
    total = int(_cost(b, tile, margin, h, w).sum()) if len(b) else 0
    whole = bool(regions) and overhead * total >= (h + 2 * HW) * (w + 2 * HW)
    return TilePlan(tuple(regions), int(need.sum()), nty * ntx, whole)
