"""Use case 7 step 5 (``step5_generate_lymphoma_output.py``): every 36x36 tile of a test image on
the 32-px grid, ``Classifier.predict`` (10 crops, averaged), one vote per tile, the image's class by
majority (ties to the lowest index), with pycaffe.

The original loaded ``./models/deploy_train32.prototxt``, which was never shipped with 3 outputs
(the common one has 2 and cannot load these weights): by default the template's deploy net is
rendered with 3 outputs (``--literal-deploy`` uses the 2-output one and fails as the original would).
Its images were read from ``./images/`` + list line + ``.tif``, i.e. ``CLL/x.tif.tif`` with the
shipped lists (``--literal-step5-path`` fails so); by default the lists name the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import classify, templates
from pipeline.caffe_env import import_caffe, set_mode
from pipeline.databases import read_mean
from pipeline.imageio import load_image
from pipeline.usecases.lymphoma import tiles

log = logging.getLogger(__name__)


@dataclass
class ImageVotes:
    """Step 5 of one image: tile centres (row, column), per-tile mean probabilities (N x 3) and
    votes, the counts per class and the image's label."""

    centres: list[tuple[int, int]]
    probs: np.ndarray
    votes: np.ndarray
    counts: list[int]
    label: int

    def as_json(self, name: str, truth: int | None) -> dict:
        """JSON-ready record (probabilities rounded to 6 decimals)."""
        return {
            "image": name,
            "true": truth,
            "predicted": self.label,
            "counts": self.counts,
            "votes": [int(v) for v in self.votes],
            "centres": [list(c) for c in self.centres],
            "probs": np.round(self.probs.astype(np.float64), 6).tolist(),
        }


class TileClassifier:
    """A 3-class deploy net with its weights and the 36x36 training mean, as step 5 used them."""

    def __init__(
        self,
        model: Path,
        mean: Path,
        net_dir: Path,
        dropout: bool = False,
        mean_mode: str = tiles.DEFAULT_MEAN_MODE,
        gpu: bool = False,
        literal_deploy: bool = False,
        batch: int = 500,
    ):
        caffe = import_caffe()
        set_mode(gpu)
        n_out = 2 if literal_deploy else 3
        self.deploy = templates.deploy_in(net_dir, dropout=dropout, num_output=n_out)
        classify.check_model(self.deploy, model)  # one line naming the mismatch (the literal deploy)
        self.mean = tiles.mean_for_net(read_mean(mean, shape=(3, tiles.TILE, tiles.TILE)), mean_mode)
        self.net = caffe.Net(str(self.deploy), str(model), caffe.TEST)
        self.in_name, self.out_name = self.net.inputs[0], self.net.outputs[-1]
        self.batch = batch

    def forward(self, crops: np.ndarray) -> np.ndarray:
        """Softmax outputs (N x 3) of N x 32 x 32 x 3 RGB [0,1] crops: BGR, x255, minus the mean (float32)."""
        x = np.ascontiguousarray(crops, dtype=np.float32).transpose(0, 3, 1, 2)[:, ::-1] * np.float32(255)
        x = (x - self.mean[None]).astype(np.float32)
        out = np.empty((len(x), 3), dtype=np.float32)
        blob = self.net.blobs[self.in_name]
        for s in range(0, len(x), self.batch):
            chunk = x[s : s + self.batch]
            if blob.data.shape[0] != len(chunk):
                blob.reshape(len(chunk), 3, tiles.CROP, tiles.CROP)
                self.net.reshape()
            blob.data[...] = chunk
            out[s : s + len(chunk)] = self.net.forward()[self.out_name].reshape(len(chunk), -1)
        return out

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """``Classifier.predict`` of N x 36 x 36 x 3 patches: the mean of each patch's ten crops' outputs (N x 3)."""
        if len(patches) == 0:
            return np.zeros((0, 3), dtype=np.float32)
        p = self.forward(tiles.ten_crops(patches))
        return p.reshape(len(patches), 10, -1).mean(axis=1, dtype=np.float32)

    def classify_image(self, image: np.ndarray) -> ImageVotes:
        """Step 5 of one H x W x 3 RGB [0,1] image."""
        centres, patches = tiles.step5_patches(image)
        probs = self.predict(patches)
        votes = tiles.first_argmax(probs)
        counts, label = tiles.vote(votes)
        return ImageVotes(centres, probs, votes, counts, label)


def image_path(root: Path, line: str, literal: bool = False) -> Path:
    """The file of a fold-list line: ``root/line`` (default), or as the original built it,
    ``root/line + '.tif'`` (``literal``), which does not exist for the shipped lines (Q16)."""
    line = line.strip()
    path = Path(root) / (line + ".tif" if literal else line)
    if literal and not path.is_file():
        raise ValueError(
            f"{path}: no such image: the original step 5 appended '.tif' to list lines that already end in "
            "'.tif' (--literal-step5-path reproduces that failure)"
        )
    return path


def load(path: Path) -> np.ndarray:
    """caffe.io.load_image of an image (H x W x 3 float32 RGB in [0, 1])."""
    return load_image(path)
