"""docker/caffe_selftest.py (make caffe-selftest) reads real gtest and pytest reports correctly.

Caffe's suites themselves are not run here (make caffe-selftest runs them, CI runs that): a small
test program is compiled against Caffe's bundled gtest 1.7 (from the source package that make setup
downloads) and a small generated pytest suite is run, both with results known by construction.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import REPO_ROOT
from tests.gtest_fixture import ORIG_TAR, build_kit  # its GTEST_PROGRAM and known results

# Known results: test_pass passes; test_fail fails; test_skip is skipped ("no widget here");
# test_broken.py cannot be collected (a collection error counts as failed).
PYTEST_FILES = {
    "test_small.py": (
        "import pytest\n"
        "def test_pass():\n    assert 1 + 1 == 2\n"
        "def test_fail():\n    assert 1 + 1 == 3\n"
        "def test_skip():\n    pytest.skip('no widget here')\n"
    ),
    "test_broken.py": "import a_module_that_does_not_exist_xyz\n",
}


def _runner():
    spec = importlib.util.spec_from_file_location("caffe_selftest", REPO_ROOT / "docker" / "caffe_selftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["caffe_selftest"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


sel = _runner()


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def gtest_kit(tmp_path_factory) -> Path:
    """A kit folder whose test.testbin is GTEST_PROGRAM built with Caffe's bundled gtest (CPU build).

    Built here from Caffe's source archive; in the runtime image (no compiler, no sources) the copy
    its build stage made (``.gtest-kit``)."""
    src_cache = Path(os.environ.get("CAFFE_SRC_CACHE", REPO_ROOT / ".caffe-src"))
    tar = src_cache / ORIG_TAR
    gxx = shutil.which("g++")
    prebuilt = REPO_ROOT / ".gtest-kit"
    if (not tar.is_file() or gxx is None) and (prebuilt / "test.testbin").is_file():
        kit = tmp_path_factory.mktemp("gtest") / "kit"
        shutil.copytree(prebuilt, kit)
        return kit
    if not tar.is_file():
        _missing(f"{tar} not present (make setup downloads it); Caffe's bundled gtest is compiled from it")
    if gxx is None:
        _missing("g++ not installed (docker/apt-packages.txt: build-essential)")
    return build_kit(tar, tmp_path_factory.mktemp("gtest"), gxx)


def test_gtest_counts_and_failing_names(gtest_kit, tmp_path):
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=False, seed=1)
    assert (res.passed, res.failed, res.skipped, res.disabled, res.filtered) == (5, 3, 0, 1, 1)
    assert sorted(res.failures) == ["Arith.Fails", "Typed/0.Wrong", "Typed/1.Wrong"]
    assert not res.ok and res.error == ""
    assert not (tmp_path / "cpp-rerun.xml").exists()  # no timer test failed: nothing rerun
    line = sel.summary_lines(res)[0]
    assert line.startswith(
        "caffe-selftest C++ (test.testbin, gtest): 5 passed, 3 failed, 0 skipped, 1 disabled; "
        "1 GPU tests filtered out (-*GPU*, CPU build) ["
    )
    assert line.endswith("FAILED")
    assert (tmp_path / "cpp.xml").is_file() and "[ RUN      ] Arith.Adds" in (tmp_path / "cpp.stdout.log").read_text()


def test_a_late_timer_test_is_rerun_alone_and_counts_as_passed(gtest_kit, tmp_path, monkeypatch):
    late = tmp_path / "late"
    late.touch()
    monkeypatch.setenv("SELFTEST_LATE", str(late))
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=False, seed=1)
    # the first run failed it (the file is gone), the rerun of it alone passed; other failures stand
    assert not late.exists() and "[  FAILED  ] BenchmarkTest.TestTimerLate" in (tmp_path / "cpp.stdout.log").read_text()
    assert (res.passed, res.failed) == (5, 3)
    assert sorted(res.failures) == ["Arith.Fails", "Typed/0.Wrong", "Typed/1.Wrong"]
    assert (
        "1 wall-clock timer test(s) failed under load and passed rerun alone: BenchmarkTest.TestTimerLate" in res.notes
    )
    # only the timer test was rerun
    assert "Running 1 test " in (tmp_path / "cpp-rerun.stdout.log").read_text()


def test_a_timer_test_failing_again_stays_failed(gtest_kit, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFTEST_LATE_ALWAYS", "1")
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=False, seed=1)
    assert (res.passed, res.failed) == (4, 4) and not res.ok
    assert sorted(res.failures) == ["Arith.Fails", "BenchmarkTest.TestTimerLate", "Typed/0.Wrong", "Typed/1.Wrong"]
    assert "Running 1 test " in (tmp_path / "cpp-rerun.stdout.log").read_text()
    assert not any("passed rerun" in n for n in res.notes)


def test_only_timer_tests_are_rerun():
    # Caffe's timer tests are BenchmarkTest/0 and /1 (typed); nothing else is rerun
    assert sel.timing_failures(
        ["Arith.Fails", "BenchmarkTest/0.TestTimerMilliSeconds", "BenchmarkTest.X", "MyBenchmarkTest.Y"]
    ) == ["BenchmarkTest/0.TestTimerMilliSeconds", "BenchmarkTest.X"]


def test_gtest_crash_names_the_crashed_test(gtest_kit, tmp_path, monkeypatch):
    # the binary aborts in Crash.MaybeAborts, before gtest writes its XML report
    monkeypatch.setenv("SELFTEST_CRASH", "1")
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=False, seed=1)
    assert not (tmp_path / "cpp.xml").exists()
    assert res.failures[-1] == "Crash.MaybeAborts (crashed: killed by SIGABRT)"
    assert "Crash.MaybeAborts (crashed)" in res.error and not res.ok
    # the tests before the crash are still counted (the shuffled order decides how many)
    assert res.failed == len(res.failures) and res.passed + res.failed <= 8


def test_gpu_build_without_a_gpu_is_an_error(gtest_kit, tmp_path):
    if sel.gpu_visible():
        pytest.skip("a GPU is visible here: a GPU build's suite would run")
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=True, seed=1)
    assert "no GPU visible" in res.error and not res.ok and res.passed == 0


def test_pytest_report_counts_reasons_and_collection_errors(tmp_path):
    for name, text in PYTEST_FILES.items():
        (tmp_path / name).write_text(text)
    report = tmp_path / "report.xml"
    # as docker/caffe_selftest.py runs pytest: collection errors do not stop the other tests
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path),
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            f"--junitxml={report}",
            "-q",
        ],
        cwd=tmp_path,
        capture_output=True,
    )
    res = sel.parse_junit_xml(report.read_text())
    assert (res.passed, res.failed, res.skipped, res.disabled) == (1, 2, 1, 0)
    names = sorted(f.split(" (")[0] for f in res.failures)
    assert names == ["test_broken", "test_small::test_fail"]
    assert res.skip_reasons == ["test_small::test_skip: no widget here"]
    assert sel.summary_lines(res)[0].startswith("caffe-selftest pycaffe: 1 passed, 2 failed, 1 skipped, 0 disabled [")


def test_gtest_filter_for():
    # gtest's syntax is POSITIVE[-NEGATIVE], patterns separated by ':'; CPU builds add *GPU* to NEGATIVE
    assert sel.gtest_filter_for("*", gpu_build=False) == "*-*GPU*"  # Caffe's runtest filter
    assert sel.gtest_filter_for("IOTest.*", gpu_build=False) == "IOTest.*-*GPU*"
    assert sel.gtest_filter_for("IOTest.*-IOTest.A", gpu_build=False) == "IOTest.*-IOTest.A:*GPU*"
    assert sel.gtest_filter_for("*", gpu_build=True) == "*"


def test_describe_exit():
    assert sel.describe_exit(-6) == "killed by SIGABRT"
    assert sel.describe_exit(1) == "exit status 1"
