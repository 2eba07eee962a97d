"""Classify 32x32 windows with a trained net as caffe.Classifier.predict did, without its overhead.

The original called ``caffe.Classifier(deploy, model, mean=<3x32x32>, channel_swap=(2,1,0),
raw_scale=255, image_dims=(32,32)).predict(windows)`` with the default ``oversample=True``: ten
inputs per window (four corners and the centre of a 32x32 image -- all the same window -- and their
horizontal mirrors), averaged. That equals the mean of the window's and its mirror's
probabilities, which is what :meth:`PatchClassifier.predict` computes, in large batches, with the
same float32 preprocessing: RGB->BGR, x255, minus the (un-mirrored) mean image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline import templates
from pipeline.caffe_env import caffe_pb2, import_caffe, refuse_python_layers, set_mode
from pipeline.databases import read_mean

log = logging.getLogger(__name__)


class ModelMismatch(ValueError):
    """A caffemodel whose layers or blob shapes do not fit the deploy net."""


def _expected_shapes(deploy: Path) -> dict[str, list[tuple[int, ...]]]:
    """Blob shapes the deploy net expects per learnable layer, from a throw-away pycaffe net."""
    caffe = import_caffe()
    net = caffe.Net(str(deploy), caffe.TEST)
    return {name: [tuple(b.data.shape) for b in blobs] for name, blobs in net.params.items()}


def read_model(model: Path):
    """The caffemodel's NetParameter (caffe_pb2), or :class:`ModelMismatch` naming the file and the
    problem: missing, or not a Caffe model (truncated by a broken download, another format). Caffe
    itself would end the whole process on such a file."""
    model = Path(model)
    if not model.is_file():
        raise ModelMismatch(f"{model}: model file does not exist")
    param = caffe_pb2().NetParameter()
    try:
        param.ParseFromString(model.read_bytes())
    except Exception as exc:
        raise ModelMismatch(
            f"{model}: not a Caffe model: truncated or another format ({model.stat().st_size} bytes; {exc})"
        ) from exc
    if not any(layer.blobs for layer in list(param.layer) + list(param.layers)):
        raise ModelMismatch(
            f"{model}: not a Caffe model with weights (no layer holds any; {model.stat().st_size} bytes)"
        )
    return param


def check_model(deploy: Path, model: Path) -> None:
    """Raise :class:`ModelMismatch` (naming the file, layer and shapes) if ``model`` does not fit.

    Caffe aborts the whole process on such a mismatch, so it is checked here first by reading the
    caffemodel with caffe_pb2.
    """
    model = Path(model)
    param = read_model(model)
    got: dict[str, list[tuple[int, ...]]] = {}
    for layer in list(param.layer) + list(param.layers):
        if layer.blobs:
            got[layer.name] = [
                tuple(b.shape.dim) if b.HasField("shape") else tuple(d for d in (b.num, b.channels, b.height, b.width))
                for b in layer.blobs
            ]
    want = _expected_shapes(Path(deploy))
    for name, shapes in want.items():
        if name not in got:
            raise ModelMismatch(f"{model}: has no weights for layer {name!r} of {deploy}")
        g = got[name]
        for i, (ws, gs) in enumerate(zip(shapes, g)):
            if int(np.prod(ws)) != int(np.prod(gs)) or len(g) != len(shapes):
                raise ModelMismatch(
                    f"{model}: layer {name!r} blob {i} has shape {gs}, the deploy net {deploy} expects {ws}"
                )


def num_outputs(model: Path) -> int:
    """Number of classes of a caffemodel (rows of ip2's weights)."""
    param = read_model(model)
    for layer in list(param.layer) + list(param.layers):
        if layer.name == "ip2" and layer.blobs:
            b = layer.blobs[1]
            return int(b.shape.dim[0]) if b.HasField("shape") else int(b.width * b.height * b.channels * b.num)
    raise ModelMismatch(f"{model}: no layer 'ip2'")


def resolve_deploy(model: Path, deploy: Path | None, net_dir: Path | None, dropout: bool = False) -> Path:
    """``deploy`` if given (refused when it holds a Python layer, unless allowed:
    :func:`pipeline.caffe_env.refuse_python_layers`), else the template's deploy net for ``model``
    (its number of classes) rendered into ``net_dir``. Raises ValueError when neither is given."""
    if deploy is not None:
        refuse_python_layers(Path(deploy))
        return Path(deploy)
    if net_dir is None:
        raise ValueError(f"{model}: no deploy net given and no folder to render one into (net_dir)")
    return templates.deploy_in(net_dir, dropout=dropout, num_output=num_outputs(model))


class PatchClassifier:
    """A deploy net with weights and a mean image, classifying batches of RGB [0,1] windows."""

    def __init__(
        self,
        model: Path,
        mean: Path,
        deploy: Path | None = None,
        dropout: bool = False,
        gpu: bool = False,
        batch: int = 512,
        net_dir: Path | None = None,
    ):
        """``deploy`` defaults to the template's deploy net (``dropout``, classes read from the
        model) rendered into ``net_dir``, the run's work folder; one of the two is needed."""
        caffe = import_caffe()
        set_mode(gpu)
        self.deploy = resolve_deploy(model, deploy, net_dir, dropout)
        check_model(self.deploy, model)
        self.mean = read_mean(mean, shape=(3, 32, 32))
        self.net = caffe.Net(str(self.deploy), str(model), caffe.TEST)
        self.in_name = self.net.inputs[0]
        self.out_name = self.net.outputs[-1]
        self.batch = batch

    def preprocess(self, windows: np.ndarray) -> np.ndarray:
        """N x 32 x 32 x 3 RGB float32 [0,1] -> N x 3 x 32 x 32 BGR x255 minus mean (float32)."""
        x = np.ascontiguousarray(windows, dtype=np.float32).transpose(0, 3, 1, 2)[:, ::-1]
        x = x * np.float32(255)
        return (x - self.mean[None]).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Softmax outputs (N x classes) of preprocessed inputs, in batches of ``self.batch``."""
        out = np.empty((len(x), self.net.blobs[self.out_name].data.shape[1]), dtype=np.float32)
        for s in range(0, len(x), self.batch):
            chunk = x[s : s + self.batch]
            blob = self.net.blobs[self.in_name]
            if blob.data.shape[0] != len(chunk):
                blob.reshape(len(chunk), 3, 32, 32)
                self.net.reshape()
            blob.data[...] = chunk
            res = self.net.forward()[self.out_name]
            out[s : s + len(chunk)] = res.reshape(len(chunk), -1)
        return out

    def predict(self, windows: np.ndarray, oversample: bool = True) -> np.ndarray:
        """Probabilities (N x classes) of RGB float windows (N x 32 x 32 x 3).

        ``oversample`` (the original's default) averages the window and its horizontal mirror.
        """
        windows = np.asarray(windows, dtype=np.float32)
        p = self.forward(self.preprocess(windows))
        if not oversample:
            return p
        pm = self.forward(self.preprocess(windows[:, :, ::-1]))
        return (p + pm) / np.float32(2)
