"""``python -m pipeline doctor``: versions and paths of everything the pipeline runs on."""

from __future__ import annotations

import importlib
import logging
import subprocess
from dataclasses import dataclass

from pipeline import caffe_env

log = logging.getLogger(__name__)


@dataclass
class Check:
    """One dependency: its name, whether it works, and its version or path (or the error)."""

    name: str
    ok: bool
    detail: str


def _module(name: str, import_name: str | None = None) -> Check:
    try:
        mod = importlib.import_module(import_name or name)
    except Exception as exc:  # any import failure is a missing dependency
        return Check(name, False, f"cannot import: {exc}")
    version = getattr(mod, "__version__", "?")
    return Check(name, True, f"{version} ({getattr(mod, '__file__', '')})")


def _tool(name: str) -> Check:
    try:
        path = caffe_env.tool_path(name)
    except caffe_env.CaffeNotFound as exc:
        return Check(name, False, str(exc))
    # Caffe's tools print their usage (and exit non-zero) when run without arguments; that they
    # start at all proves the shared libraries resolve.
    proc = subprocess.run([str(path)], capture_output=True, text=True)
    if "error while loading shared libraries" in proc.stderr:
        return Check(name, False, f"{path}: {proc.stderr.strip()}")
    return Check(name, True, str(path))


def checks() -> list[Check]:
    """Run every check (Caffe tools, pycaffe, Python dependencies)."""
    out = [_tool(t) for t in caffe_env.TOOLS]
    try:
        caffe = caffe_env.import_caffe()
        out.append(Check("pycaffe", True, f"{caffe.__version__} ({caffe.__file__})"))
    except Exception as exc:
        out.append(Check("pycaffe", False, str(exc)))
    for name, imp in (
        ("numpy", None),
        ("protobuf", "google.protobuf"),
        ("plyvel", None),
        ("scikit-image", "skimage"),
        ("scipy", None),
        ("jinja2", None),
        ("tqdm", None),
        ("Pillow", "PIL"),
        ("pooch", None),
        ("tifffile", None),
        ("openslide", None),
    ):
        out.append(_module(name, imp))
    return out


def main(quiet: bool = False) -> int:
    """Print the table; return 0 when everything is present, 1 naming what is missing."""
    results = checks()
    missing = [c.name for c in results if not c.ok]
    if not quiet or missing:
        width = max(len(c.name) for c in results)
        for c in results:
            print(f"{'ok ' if c.ok else 'MISSING'} {c.name:<{width}}  {c.detail}")
    if missing:
        print(f"missing: {', '.join(missing)} -- run `make setup`")
        return 1
    if quiet:
        print(f"doctor: Caffe at {caffe_env.caffe_root()} and {len(results) - 4} Python packages OK")
    return 0
