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
import tarfile
from pathlib import Path

import pytest

from pipeline import REPO_ROOT

ORIG_TAR = "caffe_1.0.0+git20180821.99bd997.orig.tar.gz"

# Known results with --gtest_filter=-*GPU*: passed Arith.Adds, Typed/0.Half, Typed/1.Half,
# Crash.MaybeAborts, BenchmarkTest.TestTimerLate (5); failed Arith.Fails, Typed/0.Wrong, Typed/1.Wrong
# (3: 1/3 is not 0.3); disabled Arith.DISABLED_Off (1); left out by the filter Arith.TestGPUOnly (1).
# BenchmarkTest.TestTimerLate fails once when SELFTEST_LATE names a file (it deletes it), as Caffe's
# timer tests fail once on a loaded machine: the runner reruns it alone, and then it passes. With
# SELFTEST_LATE_ALWAYS set it fails every time.
GTEST_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include "gtest/gtest.h"
TEST(Arith, Adds) { EXPECT_EQ(2, 1 + 1); }
TEST(Arith, Fails) { EXPECT_EQ(3, 1 + 1); }
TEST(Arith, DISABLED_Off) { EXPECT_EQ(2, 2); }
TEST(Arith, TestGPUOnly) { EXPECT_EQ(2, 2); }
template <typename T> class Typed : public ::testing::Test {};
typedef ::testing::Types<float, double> Ts;
TYPED_TEST_CASE(Typed, Ts);
TYPED_TEST(Typed, Half) { EXPECT_EQ(TypeParam(0.5), TypeParam(1) / 2); }
TYPED_TEST(Typed, Wrong) { EXPECT_EQ(TypeParam(0.3), TypeParam(1) / 3); }
TEST(Crash, MaybeAborts) { if (std::getenv("SELFTEST_CRASH")) std::abort(); }
TEST(BenchmarkTest, TestTimerLate) {
  const char* late = std::getenv("SELFTEST_LATE");
  if (late && std::remove(late) == 0) FAIL() << "331 ms vs 330";
  if (std::getenv("SELFTEST_LATE_ALWAYS")) FAIL() << "late again";
}
int main(int argc, char** argv) { ::testing::InitGoogleTest(&argc, argv); return RUN_ALL_TESTS(); }
"""

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
    sys.modules["caffe_selftest"] = module        # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


sel = _runner()


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def gtest_kit(tmp_path_factory) -> Path:
    """A kit folder whose test.testbin is GTEST_PROGRAM built with Caffe's bundled gtest (CPU build)."""
    src_cache = Path(os.environ.get("CAFFE_SRC_CACHE", REPO_ROOT / ".caffe-src"))
    tar = src_cache / ORIG_TAR
    if not tar.is_file():
        _missing(f"{tar} not present (make setup downloads it); Caffe's bundled gtest is compiled from it")
    gxx = shutil.which("g++")
    if gxx is None:
        _missing("g++ not installed (docker/apt-packages.txt: build-essential)")
    root = tmp_path_factory.mktemp("gtest")
    with tarfile.open(tar) as tf:                 # src/gtest/{gtest-all.cpp,gtest.h,...}, regular files only
        for m in tf.getmembers():
            if m.isfile() and m.name.startswith("src/gtest/") and ".." not in m.name:
                (root / m.name).parent.mkdir(parents=True, exist_ok=True)
                (root / m.name).write_bytes(tf.extractfile(m).read())
    (root / "t.cpp").write_text(GTEST_PROGRAM)
    kit = root / "kit"
    kit.mkdir()
    subprocess.run([gxx, "-O0", f"-I{root / 'src'}", str(root / "src" / "gtest" / "gtest-all.cpp"),
                    str(root / "t.cpp"), "-lpthread", "-o", str(kit / "test.testbin")], check=True)
    (kit / "build.env").write_text("gpu=0\n")
    return kit


def test_gtest_counts_and_failing_names(gtest_kit, tmp_path):
    res = sel.run_cpp(gtest_kit, tmp_path, gpu_build=False, seed=1)
    assert (res.passed, res.failed, res.skipped, res.disabled, res.filtered) == (5, 3, 0, 1, 1)
    assert sorted(res.failures) == ["Arith.Fails", "Typed/0.Wrong", "Typed/1.Wrong"]
    assert not res.ok and res.error == ""
    assert not (tmp_path / "cpp-rerun.xml").exists()        # no timer test failed: nothing rerun
    line = sel.summary_lines(res)[0]
    assert line.startswith("caffe-selftest C++ (test.testbin, gtest): 5 passed, 3 failed, 0 skipped, 1 disabled; "
                           "1 GPU tests filtered out (-*GPU*, CPU build) [")
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
    assert "1 wall-clock timer test(s) failed under load and passed rerun alone: BenchmarkTest.TestTimerLate" in res.notes
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
    assert sel.timing_failures(["Arith.Fails", "BenchmarkTest/0.TestTimerMilliSeconds", "BenchmarkTest.X",
                                "MyBenchmarkTest.Y"]) == ["BenchmarkTest/0.TestTimerMilliSeconds", "BenchmarkTest.X"]


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
    subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "-c", os.devnull, "--rootdir", str(tmp_path),
                    "-p", "no:cacheprovider", "--continue-on-collection-errors", f"--junitxml={report}", "-q"],
                   cwd=tmp_path, capture_output=True)
    res = sel.parse_junit_xml(report.read_text())
    assert (res.passed, res.failed, res.skipped, res.disabled) == (1, 2, 1, 0)
    names = sorted(f.split(" (")[0] for f in res.failures)
    assert names == ["test_broken", "test_small::test_fail"]
    assert res.skip_reasons == ["test_small::test_skip: no widget here"]
    assert sel.summary_lines(res)[0].startswith("caffe-selftest pycaffe: 1 passed, 2 failed, 1 skipped, 0 disabled [")


def test_gtest_filter_for():
    # gtest's syntax is POSITIVE[-NEGATIVE], patterns separated by ':'; CPU builds add *GPU* to NEGATIVE
    assert sel.gtest_filter_for("*", gpu_build=False) == "*-*GPU*"            # Caffe's runtest filter
    assert sel.gtest_filter_for("IOTest.*", gpu_build=False) == "IOTest.*-*GPU*"
    assert sel.gtest_filter_for("IOTest.*-IOTest.A", gpu_build=False) == "IOTest.*-IOTest.A:*GPU*"
    assert sel.gtest_filter_for("*", gpu_build=True) == "*"


def test_describe_exit():
    assert sel.describe_exit(-6) == "killed by SIGABRT"
    assert sel.describe_exit(1) == "exit status 1"
