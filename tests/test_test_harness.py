"""The suite's own guarantees: a missing asset is a visible skip with one end-of-run line, and a
failure under CI=true; `make test` prints the skip reasons."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from pipeline import REPO_ROOT

PROBE = """
from pathlib import Path
from tests.conftest import RELEASED, need

def test_released_model_regresses():
    need(RELEASED / "no-such-usecase" / "weights.caffemodel", "the released weights regress")

def test_present():
    need(Path(__file__))
"""


def run_probe(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_missing_asset_is_a_skip_with_one_line_saying_what_was_not_checked(tmp_path):
    out = run_probe(tmp_path, None)
    assert out.returncode == 0, out.stdout
    assert re.search(r"1 passed, 1 skipped", out.stdout)
    assert "SKIPPED" in out.stdout and "weights.caffemodel not present" in out.stdout  # -rs reason
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("NOT CHECKED")]
    assert lines == [
        "NOT CHECKED (1 test(s) skipped for missing assets): the released weights regress. "
        "To check them: run `make fetch-released` (sha256-checked download into data/released) "
        "or mount ../shared."
    ]


def test_under_ci_a_missing_asset_fails(tmp_path):
    out = run_probe(tmp_path, "true")
    assert out.returncode == 1, out.stdout
    assert re.search(r"1 failed, 1 passed", out.stdout)
    assert "CI=true: a missing asset is a failure" in out.stdout


def test_make_test_prints_the_skip_reasons_and_ci_sets_ci():
    out = subprocess.run(
        ["make", "-n", "test"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )
    pytest_line = [ln for ln in out.stdout.splitlines() if " -m pytest " in ln]
    assert len(pytest_line) == 1 and " -rs " in pytest_line[0], out.stdout
    assert 'export CI="${CI:-true}"' in (REPO_ROOT / ".ci" / "run").read_text()
