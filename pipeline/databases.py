"""Step 3: LevelDB databases with Caffe's convert_imageset and the mean with compute_image_mean.

Faithful commands (common/step3_make_dbs.sh):
    convert_imageset -shuffle -backend leveldb <patch dir>/ <list> DB_train_<fold>
    compute_image_mean DB_train_<fold> DB_train_w32_<fold>.binaryproto -backend leveldb
Caffe's ``-shuffle`` is unseeded. By default this module shuffles the list in Python with a seed
and runs convert_imageset without ``-shuffle``, so two runs give identical databases;
``caffe_shuffle=True`` uses Caffe's own shuffle instead. Keys are "%08d_<file name>".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline import atomic, lists
from pipeline.caffe_env import caffe_pb2, run_tool

log = logging.getLogger(__name__)

#: Seed used when none is given: the shuffle is always reproducible unless Caffe's is asked for.
DEFAULT_SEED = 1


class BadDatabase(RuntimeError):
    """A database or mean file that is missing, empty or of the wrong shape."""


def shuffled(entries: list[lists.Entry], seed: int) -> list[lists.Entry]:
    """The entries in the order of ``numpy.random.RandomState(seed).permutation``."""
    order = np.random.RandomState(seed).permutation(len(entries))
    return [entries[i] for i in order]


def build_db(
    patch_dir: Path,
    list_path: Path,
    db_path: Path,
    seed: int | None = DEFAULT_SEED,
    caffe_shuffle: bool = False,
    backend: str = "leveldb",
) -> int:
    """Build a Caffe database from a space-separated list; returns the record count.

    ``seed``: shuffle the list in Python (the shuffled list is kept as ``<db>.order.txt``);
    None keeps the list order. ``caffe_shuffle``: pass ``-shuffle`` to convert_imageset instead
    (not reproducible). The database is written under a temporary name and renamed once its record
    count has been checked against the list.
    """
    patch_dir, list_path, db_path = Path(patch_dir), Path(list_path), Path(db_path)
    entries = lists.check_for_convert_imageset(list_path, root=patch_dir)
    args = ["-backend", backend]
    source = list_path
    order_file = db_path.with_name(db_path.name + ".order.txt")
    if caffe_shuffle:
        args.append("-shuffle")
    elif seed is not None:
        lists.write_list(order_file, shuffled(entries, seed), sep=" ")
        source = order_file
    log_file = db_path.with_name(db_path.name + ".log")
    with atomic.atomic_path(db_path, is_dir=True) as tmp:
        run_tool(
            "convert_imageset", [*args, f"{patch_dir.resolve()}/", str(source.resolve()), str(tmp)], log_file=log_file
        )
        n = count_records(tmp, backend)
        if n != len(entries):
            raise BadDatabase(
                f"{db_path}: convert_imageset wrote {n} records for {len(entries)} list lines "
                f"({list_path}); see {log_file}"
            )
    log.info(
        "%s: %d records (%s)",
        db_path.name,
        n,
        "caffe -shuffle" if caffe_shuffle else f"seed {seed}" if seed is not None else "list order",
    )
    return n


def compute_mean(db_path: Path, mean_path: Path, backend: str = "leveldb") -> np.ndarray:
    """Run compute_image_mean on a database; returns the mean image (C x H x W, float64)."""
    db_path, mean_path = Path(db_path), Path(mean_path)
    if not db_path.is_dir():
        raise BadDatabase(f"{db_path}: database does not exist")
    with atomic.atomic_path(mean_path) as tmp:
        run_tool(
            "compute_image_mean",
            [str(db_path), str(tmp), "-backend", backend],
            log_file=mean_path.with_name(mean_path.name + ".log"),
        )
    return read_mean(mean_path)


def read_mean(path: Path, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read a binaryproto mean as the original step 5 did: float64 array of shape C x H x W.

    With ``shape`` the blob must have exactly that shape, else :class:`BadDatabase` names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BadDatabase(f"{path}: mean file does not exist")
    blob = caffe_pb2().BlobProto()
    try:
        blob.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise BadDatabase(f"{path}: not a Caffe BlobProto ({exc})") from exc
    dims = list(blob.shape.dim) if blob.HasField("shape") else [blob.num, blob.channels, blob.height, blob.width]
    dims = [d for d in dims[-3:]]
    data = np.asarray(blob.data, dtype=np.float64)
    if len(dims) != 3 or data.size != int(np.prod(dims)) or data.size == 0:
        raise BadDatabase(f"{path}: mean blob has shape {dims} and {data.size} values")
    mean = data.reshape(dims)
    if shape is not None and tuple(mean.shape) != tuple(shape):
        raise BadDatabase(f"{path}: mean has shape {tuple(mean.shape)}, expected {tuple(shape)}")
    return mean


def iter_records(db_path: Path) -> Iterator[tuple[bytes, int, np.ndarray]]:
    """Yield (key, label, image C x H x W uint8) of a LevelDB built by convert_imageset."""
    import plyvel

    pb2 = caffe_pb2()
    db = plyvel.DB(str(db_path), create_if_missing=False)
    try:
        for key, value in db:
            d = pb2.Datum()
            d.ParseFromString(value)
            if d.encoded:
                raise BadDatabase(f"{db_path}: encoded datums are not supported here")
            img = np.frombuffer(d.data, dtype=np.uint8).reshape(d.channels, d.height, d.width)
            yield key, d.label, img
    finally:
        db.close()


def count_records(db_path: Path, backend: str = "leveldb") -> int:
    """Number of records in a database."""
    if backend != "leveldb":
        raise ValueError("only leveldb is counted here")
    import plyvel

    db = plyvel.DB(str(db_path), create_if_missing=False)
    try:
        return sum(1 for _ in db.iterator(include_value=False))
    finally:
        db.close()


def db_items(db_path: Path) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB, in key order (for comparing two databases)."""
    import plyvel

    db = plyvel.DB(str(db_path), create_if_missing=False)
    try:
        return list(db)
    finally:
        db.close()
