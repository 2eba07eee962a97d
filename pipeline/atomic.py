"""Write outputs under a temporary name and rename them when complete.

Nothing half-written ever sits under a final name: a crash leaves only ``*.partial-*`` files or
folders, which a rerun removes and redoes.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial"


def partial_name(final: Path) -> Path:
    """Temporary sibling of ``final`` unique to this process."""
    return final.with_name(f"{final.name}{PARTIAL}-{os.getpid()}")


def remove_stale_partials(final: Path) -> None:
    """Delete leftovers of interrupted writes of ``final``."""
    for p in final.parent.glob(f"{final.name}{PARTIAL}-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: Path, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final`` (replacing it), else remove it.

    With ``is_dir`` the temporary path does not exist yet (tools such as convert_imageset create
    it); the caller creates files or folders at it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    tmp = partial_name(final)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(final: Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)


def write_bytes(final: Path, data: bytes) -> None:
    """Atomically write a binary file."""
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
