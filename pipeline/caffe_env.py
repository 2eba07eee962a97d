"""Where BVLC Caffe lives and how to call it.

Caffe is built by docker/build_caffe.sh into a prefix (``CAFFE_ROOT``, default ``<checkout>/.caffe``)
holding ``bin/{caffe,convert_imageset,compute_image_mean}``, ``lib/libcaffe.so`` and
``python/caffe`` (pycaffe). Tools are run with argument lists, never a shell string.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from pipeline import REPO_ROOT

log = logging.getLogger(__name__)

TOOLS = ("caffe", "convert_imageset", "compute_image_mean")


class CaffeNotFound(RuntimeError):
    """Raised when a Caffe tool or pycaffe cannot be found."""


def caffe_root() -> Path:
    """The Caffe install prefix: ``$CAFFE_ROOT`` or ``<checkout>/.caffe``."""
    env = os.environ.get("CAFFE_ROOT")
    return Path(env) if env else REPO_ROOT / ".caffe"


def tool_path(name: str) -> Path:
    """Absolute path of a Caffe command-line tool (``caffe``, ``convert_imageset``, ...)."""
    candidate = caffe_root() / "bin" / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise CaffeNotFound(
        f"Caffe tool '{name}' not found in {caffe_root() / 'bin'} nor on PATH; run `make setup` "
        "(or set CAFFE_ROOT to a Caffe install prefix)"
    )


def pycaffe_dir() -> Path:
    """Folder that holds the ``caffe`` Python package of the install."""
    return caffe_root() / "python"


_caffe: ModuleType | None = None


def import_caffe(quiet: bool = True) -> ModuleType:
    """Import pycaffe (once), making it importable from ``CAFFE_ROOT`` if needed.

    ``quiet`` sets GLOG_minloglevel=2 before the first import so that net set-up does not
    flood the terminal; it has no effect once Caffe is loaded.
    """
    global _caffe
    if _caffe is not None:
        return _caffe
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
    path = str(pycaffe_dir())
    if (pycaffe_dir() / "caffe").is_dir() and path not in sys.path:
        sys.path.insert(0, path)
    try:
        import caffe  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - exercised only without Caffe
        raise CaffeNotFound(f"pycaffe cannot be imported ({exc}); run `make setup`") from exc
    _caffe = caffe
    return caffe


def caffe_pb2() -> ModuleType:
    """The ``caffe_pb2`` protobuf module of the install (imports pycaffe)."""
    import_caffe()
    from caffe.proto import caffe_pb2 as pb2  # type: ignore[import-not-found]

    return pb2


class GpuUnavailable(RuntimeError):
    """Raised when ``--gpu`` is asked for but this Caffe cannot use GPU ``device``."""


# Run in a child: without a usable GPU, Caffe's set_device / set_mode_gpu end the whole process
# through glog's CHECK (exit 134 "CUDA driver version is insufficient", or "Cannot use GPU in
# CPU-only Caffe"), which Python cannot catch.
_GPU_PROBE = "import sys, caffe; caffe.set_device(int(sys.argv[1])); caffe.set_mode_gpu()"
_gpu_ok: set[int] = set()


def require_gpu(device: int = 0) -> None:
    """Check in a subprocess that pycaffe can select GPU ``device``; raise GpuUnavailable if not.

    The verdict is cached for the process (one child, about a second, per device).
    """
    if device in _gpu_ok:
        return
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(pycaffe_dir()), *filter(None, [os.environ.get("PYTHONPATH")])]),
        GLOG_minloglevel="0",
    )
    proc = subprocess.run([sys.executable, "-c", _GPU_PROBE, str(device)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [
            ln
            for ln in proc.stderr.splitlines()
            if "Check failed" in ln or "Cannot use GPU" in ln or "CUDA" in ln or "Error" in ln
        ]
        why = lines[-1].split("] ", 1)[-1] if lines else f"exit {proc.returncode}"
        raise GpuUnavailable(
            f"--gpu: Caffe in {caffe_root()} cannot use GPU {device} ({why}). A CPU-only Caffe needs "
            "`make setup CAFFE_BUILD_FLAGS=--gpu`; a CUDA Caffe needs an NVIDIA driver and GPU "
            "(in Docker: --gpus all). Leave out --gpu to run on the CPU."
        )
    _gpu_ok.add(device)


def set_mode(gpu: bool, device: int = 0) -> None:
    """Select CPU or GPU for pycaffe; with ``gpu``, check first that the GPU is usable."""
    caffe = import_caffe()
    if gpu:
        require_gpu(device)
        caffe.set_device(device)
        caffe.set_mode_gpu()
    else:
        caffe.set_mode_cpu()


def run_tool(
    name: str, args: list[str], cwd: Path | None = None, log_file: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a Caffe tool with an argument list; raise with its last output lines on failure.

    Output (Caffe logs to stderr through glog) is captured, and also written to ``log_file``
    when given.
    """
    cmd = [str(tool_path(name)), *args]
    log.debug("running %s", " ".join(cmd))
    full_env = dict(os.environ)
    full_env["GLOG_logtostderr"] = "1"
    full_env["GLOG_minloglevel"] = "0"  # import_caffe() may have set 2 for pycaffe; the tools must log
    if env:
        full_env.update(env)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env)
    if log_file is not None:
        log_file.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{name} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


# --------------------------------------------------------------------------- Python layers

#: Set to "1" (``--allow-python-layers``) to load nets with Python layers that the user passes.
ALLOW_PYTHON_LAYERS_ENV = "ALLOW_PYTHON_LAYERS"


class PythonLayerRefused(ValueError):
    """A net the user passes holds a Python layer: loading it would import and run that module."""


def python_layers(net_path: Path) -> list[tuple[str, str]]:
    """(layer name, module) of each Python layer of a prototxt (``type: "Python"``; the V1 ``layers``
    have no such type). Raises ValueError when the file does not parse as a net."""
    from google.protobuf import text_format

    net = caffe_pb2().NetParameter()
    try:
        text_format.Merge(Path(net_path).read_text(), net)
    except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
        raise ValueError(f"{net_path}: not a readable Caffe net prototxt ({exc})") from None
    return [(layer.name, layer.python_param.module) for layer in net.layer if layer.type == "Python"]


def refuse_python_layers(net_path: Path, allow: bool | None = None) -> None:
    """Raise :class:`PythonLayerRefused` naming the file, layer and module when a net the user
    passes holds a Python layer (Caffe is built with them: loading the net imports any module it
    names), unless ``allow`` (None: ``$ALLOW_PYTHON_LAYERS == "1"``, which ``--allow-python-layers``
    sets)."""
    if allow is None:
        allow = os.environ.get(ALLOW_PYTHON_LAYERS_ENV) == "1"
    found = python_layers(net_path)
    if found and not allow:
        name, module = found[0]
        raise PythonLayerRefused(
            f"{net_path}: layer {name!r} is a Python layer (module {module or '?'}): loading the net would "
            f"import and run that module; refused (pass --allow-python-layers, or set ALLOW_PYTHON_LAYERS=1, if you trust it)"
        )
    if found:
        log.warning("%s: Python layer(s) %s allowed (--allow-python-layers)", net_path, ", ".join(n for n, _ in found))
