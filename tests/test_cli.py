"""The command line as a shell user meets it."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline import REPO_ROOT


def test_a_closed_pipe_ends_quietly_with_sigpipe_status():
    # `python -m pipeline usecases | head`: the reader is gone before the first write
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pipeline", "usecases"],
            cwd=REPO_ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert out.returncode == 141, out.stderr  # 128 + SIGPIPE, as a shell reports for cat or ls
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr, out.stderr
