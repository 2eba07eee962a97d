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
        "(or set CAFFE_ROOT to a Caffe install prefix)")


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


def set_mode(gpu: bool, device: int = 0) -> None:
    """Select CPU or GPU for pycaffe."""
    caffe = import_caffe()
    if gpu:
        caffe.set_device(device)
        caffe.set_mode_gpu()
    else:
        caffe.set_mode_cpu()


def run_tool(name: str, args: list[str], cwd: Path | None = None, log_file: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
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
