"""Step 4: train with ``caffe train``, resume from the newest snapshot, parse the log.

Caffe writes its snapshots straight to their final names (``<prefix>_iter_<N>.caffemodel``, then
``.solverstate``): a crash while it writes leaves a truncated file under a final name. So a training
counts as finished only when the final model and its solverstate both parse and agree
(:func:`check_snapshot`), and it resumes from the newest pair that does, logging the pairs it passes
over.

The Caffe log is kept beside the model (``<snapshot prefix>_train.log``, appended across resumed
runs) and parsed into ``<prefix>_log.csv`` (iteration, train loss, test accuracy, test loss) and a
PNG plot.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline import atomic
from pipeline.caffe_env import caffe_pb2, refuse_python_layers, require_gpu, tool_path

log = logging.getLogger(__name__)

_ITER = re.compile(r"Iteration (\d+)")
_TRAIN_LOSS = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = ([-\d.eE+naif]+)")
_TESTING = re.compile(r"Iteration (\d+), Testing net")
_TEST_OUT = re.compile(r"Test net output #\d+: (\w+) = ([-\d.eE+naif]+)")


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    model: Path
    log: Path
    csv: Path
    resumed_from: Path | None
    skipped: bool


def read_solver(solver: Path):
    """Parse a solver prototxt."""
    from google.protobuf import text_format

    msg = caffe_pb2().SolverParameter()
    text_format.Merge(Path(solver).read_text(), msg)
    return msg


def snapshots(prefix: Path) -> list[tuple[int, Path, Path]]:
    """Snapshot pairs present (iteration, caffemodel, solverstate) of ``prefix``, oldest first (whether
    they parse is :func:`check_snapshot`'s question)."""
    out = []
    for st in prefix.parent.glob(f"{prefix.name}_iter_*.solverstate"):
        m = re.fullmatch(rf"{re.escape(prefix.name)}_iter_(\d+)\.solverstate", st.name)
        model = st.with_suffix(".caffemodel")
        if m and model.is_file() and st.stat().st_size > 0:
            out.append((int(m.group(1)), model, st))
    return sorted(out)


def solver_net(solver: Path) -> Path | None:
    """The net file a solver names (``net:``), relative to the solver's folder; None without one."""
    sp = read_solver(solver)
    if not sp.net:
        return None
    return Path(sp.net) if Path(sp.net).is_absolute() else Path(solver).resolve().parent / sp.net


def train_layer_names(solver: Path) -> list[str]:
    """Names of the layers of the solver's net in the TRAIN phase (those a caffemodel it writes holds,
    besides the split layers Caffe inserts); [] when the net is not a file next to the solver."""
    net_path = solver_net(solver)
    if net_path is None:
        return []
    try:
        from google.protobuf import text_format

        net = caffe_pb2().NetParameter()
        text_format.Merge(net_path.read_text(), net)
    except (OSError, ValueError):
        return []
    train = caffe_pb2().TRAIN

    def meets(rule) -> bool:
        return not rule.HasField("phase") or rule.phase == train

    return [
        layer.name
        for layer in net.layer
        if (not layer.include or any(meets(r) for r in layer.include)) and not any(meets(r) for r in layer.exclude)
    ]


def _blob_size(blob) -> int:
    """Number of values a BlobProto declares (its shape, or the legacy num/channels/height/width)."""
    if blob.HasField("shape"):
        n = 1
        for d in blob.shape.dim:
            n *= d
        return n
    return blob.num * blob.channels * blob.height * blob.width


def _blob_ok(blob) -> bool:
    n = _blob_size(blob)
    return n == max(len(blob.data), len(blob.double_data))


def check_snapshot(model: Path, state: Path, train_layers: list[str] | None = None) -> str | None:
    """None when a snapshot pair is whole, else why not (one phrase naming the file).

    Whole: both files parse (``NetParameter``, ``SolverState``); the model holds every layer of
    ``train_layers`` (a protobuf cut at a layer's end still parses, as a net with fewer layers) and
    every blob has as many values as its shape says; the state is of the model's iteration, names the
    model, and keeps history blobs (one or more per learnable blob, as its solver type does) whose
    sizes are the learnable blobs' sizes.
    """
    from google.protobuf.message import DecodeError

    pb = caffe_pb2()
    net, st = pb.NetParameter(), pb.SolverState()
    for path, msg in ((model, net), (state, st)):
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return f"{Path(path).name} cannot be read ({exc.strerror})"
        if not data:
            return f"{Path(path).name} is empty"
        try:
            msg.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return f"{Path(path).name} does not parse ({exc}; truncated?)"
    names = {layer.name for layer in net.layer}
    lost = [n for n in (train_layers or []) if n not in names]
    if lost:
        return f"{model.name} lacks layer(s) {', '.join(lost[:3])} of the net (truncated?)"
    params = [b for layer in net.layer for b in layer.blobs]
    if not params or not all(_blob_ok(b) for b in params):
        return f"{model.name} has no weights or a blob of the wrong size (truncated?)"
    m = re.search(r"_iter_(\d+)\.caffemodel$", model.name)
    if m and st.iter != int(m.group(1)):
        return f"{state.name} is of iteration {st.iter}, not {m.group(1)}"
    if st.learned_net and Path(st.learned_net).name != model.name:
        return f"{state.name} belongs to {Path(st.learned_net).name}, not {model.name}"
    h = list(st.history)
    if (
        not h
        or len(h) % len(params)
        or any(_blob_size(b) != _blob_size(params[i % len(params)]) or not _blob_ok(b) for i, b in enumerate(h))
    ):
        return f"{state.name} has {len(h)} history blob(s) for {len(params)} weight blob(s) (truncated?)"
    return None


def latest_good_snapshot(prefix: Path, train_layers: list[str]) -> tuple[int, Path, Path] | None:
    """The newest snapshot pair of ``prefix`` that is whole (:func:`check_snapshot`), logging each
    newer one passed over and why; None when none is."""
    for it, model, state in reversed(snapshots(prefix)):
        why = check_snapshot(model, state, train_layers)
        if why is None:
            return it, model, state
        log.warning("snapshot of iteration %d not usable: %s; trying the one before it", it, why)
    return None


def final_model(solver: Path) -> Path:
    """Path of the model Caffe writes when the solver finishes (``<prefix>_iter_<max_iter>``)."""
    sp = read_solver(solver)
    prefix = Path(sp.snapshot_prefix)
    if not prefix.is_absolute():
        prefix = Path(solver).resolve().parent / prefix
    return prefix.with_name(f"{prefix.name}_iter_{sp.max_iter}.caffemodel")


def train(
    solver: Path, gpu: bool = False, device: int = 0, resume: bool = True, show_progress: bool = True
) -> TrainResult:
    """Run ``caffe train --solver`` (resuming from the newest whole snapshot pair); returns the final model.

    A finished run (final model and solverstate present, parsing and agreeing) is skipped. Raises
    RuntimeError with the log's tail if Caffe fails.
    """
    solver = Path(solver).resolve()
    sp = read_solver(solver)
    prefix = Path(sp.snapshot_prefix)
    if not prefix.is_absolute():
        prefix = solver.parent / prefix
    model = final_model(solver)
    log_path = prefix.with_name(prefix.name + "_train.log")
    csv_path = prefix.with_name(prefix.name + "_log.csv")
    net_path = solver_net(solver)
    if net_path is not None and net_path.is_file():
        refuse_python_layers(net_path)  # `caffe train` would import the module a Python layer names
    layers = train_layer_names(solver)
    if model.is_file():
        why = check_snapshot(model, model.with_suffix(".solverstate"), layers)
        if why is None:
            log.info("training already finished: %s", model)
            if log_path.is_file():
                write_log_csv(log_path, csv_path)
            return TrainResult(model, log_path, csv_path, None, True)
        log.warning("training not finished: its final snapshot is damaged (%s, a crash while Caffe wrote it?)", why)
    cmd = [str(tool_path("caffe")), "train", f"--solver={solver}"]
    resumed = None
    if resume and snapshots(prefix):
        good = latest_good_snapshot(prefix, layers)
        if good is None:
            log.warning("no snapshot pair parses: training from the start (%s_iter_*)", prefix.name)
        else:
            resumed = good[2]
            cmd.append(f"--snapshot={resumed}")
            log.info("resuming from %s", resumed.name)
    if gpu:
        require_gpu(device)  # else `caffe train` would fail later with a CHECK in its log
        cmd.append(f"--gpu={device}")
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")  # pycaffe may have set 2
    log.info("caffe train: %d iterations, log %s", sp.max_iter, log_path)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=sp.max_iter, desc=f"train {prefix.name}", unit="it", initial=0)
    tail: list[str] = []
    with open(log_path, "a") as lf:
        proc = subprocess.Popen(
            cmd, cwd=solver.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            lf.write(line)
            tail = (tail + [line.rstrip()])[-20:]
            m = _ITER.search(line)
            if bar is not None and m:
                bar.n = min(int(m.group(1)), sp.max_iter)
                bar.refresh()
        rc = proc.wait()
    if bar is not None:
        bar.close()
    write_log_csv(log_path, csv_path)
    damaged = check_snapshot(model, model.with_suffix(".solverstate"), layers) if model.is_file() else None
    if rc != 0 or not model.is_file() or damaged:
        hint = ""
        if any("CUDA driver version is insufficient" in ln or "no CUDA-capable device" in ln for ln in tail):
            hint = (
                "\nThis Caffe was built with CUDA, and its data-prefetch threads need a GPU even when "
                "training on the CPU: train where an NVIDIA GPU is visible (in Docker: --gpus all), or "
                "with the CPU build (make setup; the CPU image)."
            )
        if rc == 0 and damaged:
            hint += f"\nIts final snapshot is damaged: {damaged} (disk full?)."
        raise RuntimeError(f"caffe train failed (exit {rc}); log {log_path}:\n" + "\n".join(tail) + hint)
    plot_log(csv_path, csv_path.with_suffix(".png"))
    return TrainResult(model, log_path, csv_path, resumed, False)


def parse_log(text: str) -> list[dict]:
    """Rows {iteration, train_loss, test_accuracy, test_loss} from a Caffe training log.

    Train loss comes from the display lines ("Iteration N ..., loss = X"); test values from the
    "Test net output" lines following "Iteration N, Testing net". Missing values are None.
    """
    rows: dict[int, dict] = {}
    testing_iter: int | None = None
    for line in text.splitlines():
        m = _TESTING.search(line)
        if m:
            testing_iter = int(m.group(1))
            continue
        m = _TEST_OUT.search(line)
        if m and testing_iter is not None:
            key = "test_accuracy" if m.group(1) == "accuracy" else f"test_{m.group(1)}"
            rows.setdefault(testing_iter, {})[key] = float(m.group(2))
            continue
        m = _TRAIN_LOSS.search(line)
        if m:
            rows.setdefault(int(m.group(1)), {})["train_loss"] = float(m.group(2))
    out = []
    for it in sorted(rows):
        r = rows[it]
        out.append(
            {
                "iteration": it,
                "train_loss": r.get("train_loss"),
                "test_accuracy": r.get("test_accuracy"),
                "test_loss": r.get("test_loss"),
            }
        )
    return out


def write_log_csv(log_path: Path, csv_path: Path) -> list[dict]:
    """Parse a Caffe log and write its CSV (atomically); returns the rows."""
    rows = parse_log(Path(log_path).read_text())
    with atomic.atomic_path(Path(csv_path)) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["iteration", "train_loss", "test_accuracy", "test_loss"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return rows


def plot_log(csv_path: Path, png_path: Path) -> None:
    """Plot train/test loss and test accuracy against iteration into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train_loss", "train loss"), ("test_loss", "test loss")):
        pts = [(int(r["iteration"]), float(r[key])) for r in rows if r[key]]
        if pts:
            ax.plot(*zip(*pts), label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    acc = [(int(r["iteration"]), float(r["test_accuracy"])) for r in rows if r["test_accuracy"]]
    if acc:
        ax2 = ax.twinx()
        ax2.plot(*zip(*acc), "g.-", label="test accuracy")
        ax2.set_ylabel("test accuracy")
        ax2.set_ylim(0, 1)
    handles = [ln for a in fig.axes for ln in a.get_lines()]
    if handles:
        ax.legend(handles, [h.get_label() for h in handles], loc="center right")
    fig.tight_layout()
    with atomic.atomic_path(Path(png_path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
