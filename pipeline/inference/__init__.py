"""Step 5: per-pixel probability maps of whole images with a trained 32x32 patch classifier.

Semantics of the original (common/step5_create_output_images_kfold.py): load RGB float [0, 1];
resize for the use case; pad 16 px symmetric; for padded rows and columns 17 .. size-17 (the first
row and column of the image are never computed) classify the window image[r-16:r+16, c-16:c+16]
with ``caffe.Classifier.predict`` (oversampling: the window and its mirror, averaged); with a
stride, rows and columns step by it. Outputs ``<stem>_prob.png`` (R = P(class 0), G = P(class 1),
B = 0) and ``<stem>_class.png`` (argmax), each rescaled from its min..max to 0..255 as the
original's scipy.misc.imsave did (``round(255 p)`` on request).

One job a module: ``geometry`` (pure window geometry), ``images`` (which inputs, loaded and resized
as caffe.io did), ``engines`` (reference, exact, fcn behind one interface), ``outputs`` (PNG and
.npy encoding), ``runner`` (the claimed loop over images; claims in :mod:`pipeline.claims`).
"""

from pipeline.inference.engines import ENGINES, Engine, Options, make_engine
from pipeline.inference.geometry import HW, WINDOW_FLOP, computed_coords, fill_strided, pad, window_count, windows
from pipeline.inference.images import (
    IMAGE_SUFFIXES,
    expand_inputs,
    load_resized,
    resize_like_caffe,
    resize_to_like_caffe,
)
from pipeline.inference.outputs import (
    PNG_SCALES,
    RECORD,
    SCORE_SOURCES,
    OutputRecord,
    bytescale,
    encode_outputs,
    output_paths,
    read_maps,
    read_record,
    write_outputs,
    write_record,
)
from pipeline.inference.runner import infer_images

__all__ = [
    "ENGINES",
    "Engine",
    "HW",
    "IMAGE_SUFFIXES",
    "Options",
    "OutputRecord",
    "PNG_SCALES",
    "RECORD",
    "SCORE_SOURCES",
    "WINDOW_FLOP",
    "bytescale",
    "computed_coords",
    "encode_outputs",
    "expand_inputs",
    "fill_strided",
    "infer_images",
    "load_resized",
    "make_engine",
    "output_paths",
    "pad",
    "read_maps",
    "read_record",
    "resize_like_caffe",
    "resize_to_like_caffe",
    "window_count",
    "windows",
    "write_outputs",
    "write_record",
]
