"""Reruns never reuse stale work: stage recipes (pipeline/recipes.py) on their own, in the
cross-validated runner (use cases 2 and 4) and in use case 6, with the real Caffe tools; and
`make ... FORCE=1`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, crossval, databases, lists, recipes
from pipeline.templates import SolverParams
from pipeline.usecases import epi
from pipeline.usecases.idc import runner

FORCE_AND_WORK = "rerun with --force (make: FORCE=1) to recompute it and every stage after it, or use a new --work"


# --------------------------------------------------------------------------- the mechanism


class Counter:
    """A stage body writing ``name`` (and a byproduct) into a folder, counting its calls."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name, self.calls = folder, name, 0

    def __call__(self) -> None:
        self.calls += 1
        (self.folder / self.name).write_text(f"call {self.calls}")
        (self.folder / f"{self.name}.log").write_text("log")


def two_stages(
    tmp: Path,
    n: int = 1,
    m: str = "x",
    force: bool = False,
    run_b: bool = True,
    a: Counter | None = None,
    b: Counter | None = None,
) -> tuple[Counter, Counter]:
    """Stage a (option n) makes a.txt; stage b (option m) makes b.txt from it."""
    a = a or Counter(tmp, "a.txt")
    b = b or Counter(tmp, "b.txt")
    ra = recipes.stage(
        "a", tmp, options={"n": n}, outputs=["a.txt"], byproducts=["a.txt.*"], make=a, force=force, what="the a file"
    )
    recipes.stage("b", tmp, options={"m": m}, inputs={"a": ra}, outputs=["b.txt"], make=b, force=force, run=run_b)
    return a, b


def test_same_recipe_skips_changed_option_refuses_force_recomputes_it_and_after(tmp_path):
    a, b = two_stages(tmp_path)
    assert (a.calls, b.calls) == (1, 1)
    two_stages(tmp_path, a=a, b=b)  # same recipe: both skipped
    assert (a.calls, b.calls) == (1, 1)
    with pytest.raises(recipes.StaleRecipe) as e:  # another option value: refused, nothing touched
        two_stages(tmp_path, n=2, a=a, b=b)
    msg = str(e.value)
    assert msg.startswith(f"a: {tmp_path / 'a.txt'} was made with n=1, this run asks n=2; ")
    assert FORCE_AND_WORK in msg and "\n" not in msg
    assert (a.calls, b.calls) == (1, 1) and (tmp_path / "a.txt").read_text() == "call 1"
    (tmp_path / "a.txt.log").unlink()
    (tmp_path / "a.txt.old").write_text("left by the first run")  # a byproduct: removed on recompute
    two_stages(tmp_path, n=2, force=True, a=a, b=b)  # --force: a again, and b after it (same own option)
    assert (a.calls, b.calls) == (2, 2) and not (tmp_path / "a.txt.old").exists()
    rec = json.loads((tmp_path / "b.recipe.json").read_text())
    assert rec["state"] == "done" and rec["inputs"]["a"]["options"] == {"n": 2}
    two_stages(tmp_path, n=2, force=True, a=a, b=b)  # --force with nothing changed: skipped
    assert (a.calls, b.calls) == (2, 2)
    with pytest.raises(recipes.StaleRecipe, match=r"b: .* was made with m=x, this run asks m=y; "):
        two_stages(tmp_path, n=2, m="y", a=a, b=b)
    assert (a.calls, b.calls) == (2, 2)


def test_an_input_made_again_refuses_the_stages_after_it(tmp_path):
    a, b = two_stages(tmp_path)
    recipes.stage("a", tmp_path, options={"n": 2}, outputs=["a.txt"], make=a, force=True)  # only a, forced
    with pytest.raises(
        recipes.StaleRecipe, match=r"b: .*b.txt was made with n=1, this run asks n=2 \(in its input a\)"
    ):
        two_stages(tmp_path, n=2, a=a, b=b)
    assert b.calls == 1
    two_stages(tmp_path, n=2, force=True, a=a, b=b)
    assert (a.calls, b.calls) == (2, 2)
    (tmp_path / "a.txt").unlink()  # removed by hand: made again with the same recipe...
    with pytest.raises(recipes.StaleRecipe, match="an input that has been made again since: a"):
        two_stages(tmp_path, n=2, a=a, b=b)  # ...so b, made from the old a, is refused
    assert (a.calls, b.calls) == (3, 2)


def test_interrupted_stage_resumes_with_the_same_recipe_only(tmp_path):
    seen = []

    def make() -> None:
        seen.append(sorted(p.name for p in tmp_path.glob("part*")))
        (tmp_path / f"part{len(seen)}").write_text("")
        if len(seen) == 1:
            raise KeyboardInterrupt  # interrupted after writing part1
        (tmp_path / "out").write_text("done")

    with pytest.raises(KeyboardInterrupt):
        recipes.stage("s", tmp_path, options={"iter": 10}, outputs=["out"], byproducts=["part*"], make=make)
    assert json.loads((tmp_path / "s.recipe.json").read_text())["state"] == "started"
    with pytest.raises(recipes.MissingInput, match=r"missing input: the trained thing \(.*out\) was not finished"):
        recipes.stage("s", tmp_path, options={"iter": 10}, outputs=["out"], what="the trained thing", run=False)
    with pytest.raises(recipes.StaleRecipe, match="iter=10, this run asks iter=20"):
        recipes.stage("s", tmp_path, options={"iter": 20}, outputs=["out"], byproducts=["part*"], make=make)
    recipes.stage("s", tmp_path, options={"iter": 10}, outputs=["out"], byproducts=["part*"], make=make)
    assert seen == [[], ["part1"]]  # resumed over what the interrupted run left
    assert json.loads((tmp_path / "s.recipe.json").read_text())["state"] == "done"


def test_missing_input_names_the_stage_that_makes_it_and_unrecorded_outputs_are_refused(tmp_path):
    with pytest.raises(recipes.MissingInput) as e:
        recipes.stage(
            "train", tmp_path, key="3", outputs=["m.caffemodel"], what="the trained model of fold 3", run=False
        )
    assert str(e.value) == (
        f"missing input: the trained model of fold 3 ({tmp_path / 'm.caffemodel'}) not found; "
        "the train stage makes it: run it first (add train to --stages, or leave --stages out)."
    )
    (tmp_path / "m.caffemodel").write_text("made by an earlier version")
    calls = []
    with pytest.raises(recipes.StaleRecipe, match="exists but has no recipe record train_3.recipe.json"):
        recipes.stage("train", tmp_path, key="3", outputs=["m.caffemodel"], make=lambda: calls.append(1))
    assert not calls
    recipes.stage(
        "train",
        tmp_path,
        key="3",
        outputs=["m.caffemodel"],
        force=True,
        make=lambda: (calls.append(1), (tmp_path / "m.caffemodel").write_text("new")),
    )
    assert calls == [1] and (tmp_path / "m.caffemodel").read_text() == "new"


# --------------------------------------------------------------------------- use cases 2 and 4 (crossval)


@pytest.fixture(scope="module")
def epi_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("epi") / "data"
    epi.make_cohort(data, n_patients=5, size=96, seed=2)
    return data


def _epi_cfg(data: Path, work: Path, **kw) -> crossval.Config:
    max_positive = kw.pop("max_positive", 20)
    return crossval.Config(
        data=data, work=work, params=epi.Params(max_positive=max_positive), show_progress=False, **kw
    )


def test_crossval_rerun_with_changed_seed_or_max_positive_refuses_or_recomputes(tmp_path, epi_data):
    uc, work = epi.Epithelium(), tmp_path / "w"
    stages = ("patches", "folds", "dbs")
    crossval.run(uc, _epi_cfg(epi_data, work, seed=1), stages)
    made = {p.name: json.loads(p.read_text())["made"] for p in work.rglob("*.recipe.json")}
    assert len(made) == 1 + 1 + 5
    db1 = databases.db_items(work / "DB_train_1")
    folds1 = (work / "lists" / "folds.json").read_text()

    crossval.run(uc, _epi_cfg(epi_data, work, seed=1), stages)  # same recipe: every stage skipped
    assert {p.name: json.loads(p.read_text())["made"] for p in work.rglob("*.recipe.json")} == made
    with pytest.raises(recipes.StaleRecipe) as e:
        crossval.run(uc, _epi_cfg(epi_data, work, seed=2), stages)
    assert str(e.value).startswith(
        f"patches: {work / 'patches_report.json'} was made with seed=1, this run asks seed=2; "
    )
    with pytest.raises(recipes.StaleRecipe, match="max_positive=20, this run asks max_positive=30"):
        crossval.run(uc, _epi_cfg(epi_data, work, seed=1, max_positive=30), stages)
    # the dbs stage alone with another seed: its inputs (patches, folds) are checked and refuse
    with pytest.raises(recipes.StaleRecipe, match="add patches to --stages and rerun with --force"):
        crossval.run(uc, _epi_cfg(epi_data, work, seed=2), ("dbs",))
    assert databases.db_items(work / "DB_train_1") == db1 and (work / "lists" / "folds.json").read_text() == folds1

    crossval.run(uc, _epi_cfg(epi_data, work, seed=2, force=True), stages)  # --force: everything made again
    after = {p.name: json.loads(p.read_text()) for p in work.rglob("*.recipe.json")}
    assert all(after[n]["made"] != made[n] and after[n]["state"] == "done" for n in made)
    assert after["dbs_1.recipe.json"]["options"]["seed"] == 2
    assert (work / "lists" / "folds.json").read_text() != folds1  # 5 patients: seeds 1 and 2 give other folds
    assert databases.db_items(work / "DB_train_1") != db1


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("command", ["usecase2", "usecase4", "usecase1"])
def test_stages_without_their_inputs_name_the_missing_input_and_its_stage(tmp_path, epi_data, command):
    from pipeline import nuclei
    from pipeline.usecases import lymphocyte as ly

    if command == "usecase4":
        data = tmp_path / "data"
        ly.make_cohort(data, n_images=5, size=40, seed=4)
    elif command == "usecase1":
        data = tmp_path / "data"
        nuclei.make_cohort(data, n_patients=5, size=96, seed=4)
    else:
        data = epi_data
    base = ["--data", str(data), "--work", str(tmp_path / "w"), "--iter", "2", "--max-positive", "10"]
    out = _cli(command, *base, "--stages", "outputs,scores")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"ERROR pipeline: missing input: the patches and their report ({tmp_path / 'w' / 'patches_report.json'}) "
            "not found; the patches stage makes it: run it first (add patches to --stages, or leave --stages out)."
        )
    )
    assert _cli(command, *base, "--stages", "patches,folds,dbs").returncode == 0
    out = _cli(command, *base, "--stages", "outputs,scores")  # a work folder without models
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"missing input: the solver and nets of fold 1 ({tmp_path / 'w' / 'models' / '1-alexnet_solver_ada.prototxt'})"
            " not found; the prototxt stage makes it: run it first (add prototxt to --stages, or leave --stages out)."
        )
    )


# --------------------------------------------------------------------------- use case 6


def _uc6(root: Path, work: Path, split_dir: Path, **kw) -> runner.Config:
    it = kw.pop("iterations", 4)
    sp = SolverParams(max_iter=it, test_interval=it, snapshot=2, display=2)
    return runner.Config(
        data=root, work=work, split_dir=split_dir, iterations=it, solver=sp, show_progress=False, jobs=1, **kw
    )


def test_usecase6_rerun_with_changed_seed_split_iter_or_variant_refuses_or_recomputes(tmp_path, small_cohort):
    root, split = small_cohort
    work = tmp_path / "w"
    stages = ("patches", "lists", "dbs", "prototxt", "train")
    runner.run(_uc6(root, work, root), stages)
    model4 = work / "models" / "1_caffenet_train_w32_noresize_iter_4.caffemodel"
    weights = model4.read_bytes()
    made = {p.name: json.loads(p.read_text())["made"] for p in work.rglob("*.recipe.json")}
    runner.run(_uc6(root, work, root), stages)  # same recipe: skipped
    assert {p.name: json.loads(p.read_text())["made"] for p in work.rglob("*.recipe.json")} == made
    assert model4.read_bytes() == weights

    other = tmp_path / "split"  # a test patient moved to training
    other.mkdir()
    lists.write_names(other / "cases_train.txt", split["train"] + split["test"][:1])
    lists.write_names(other / "cases_val.txt", split["val"])
    lists.write_names(other / "cases_test.txt", split["test"][1:])
    refusals = {
        "seed=1, this run asks seed=3": _uc6(root, work, root, seed=3),
        "iter=4, this run asks iter=6": _uc6(root, work, root, iterations=6),
        "variant=crop, this run asks variant=resize": _uc6(root, work, root, variant="resize"),
        "dropout=false, this run asks dropout=true": _uc6(root, work, root, dropout=True),
        "split=3/1/2 patients, sha256 ": _uc6(root, work, other),
    }
    for text, cfg in refusals.items():
        with pytest.raises(recipes.StaleRecipe) as e:
            runner.run(cfg, stages)
        assert text in str(e.value) and FORCE_AND_WORK in str(e.value)
    assert model4.read_bytes() == weights

    runner.run(_uc6(root, work, root, iterations=6, force=True), stages)  # iter: prototxt and train again, not before
    now = {p.name: json.loads(p.read_text())["made"] for p in work.rglob("*.recipe.json")}
    assert sorted(n for n in made if now[n] != made[n]) == ["prototxt_1.recipe.json", "train_1.recipe.json"]
    assert (work / "models" / "1_caffenet_train_w32_noresize_iter_6.caffemodel").is_file()
    log = (work / "models" / "1_caffenet_train_w32_noresize_train.log").read_text()
    assert log.count("Solver scaffolding done") == 1 and "Resuming from" not in log  # trained from scratch

    runner.run(_uc6(root, work, other, iterations=6, force=True), ("patches", "lists", "dbs"))  # split: from patches on
    test_list = lists.read_list(work / "lists" / "test_w32_1.txt")
    assert test_list and not any(e.name.startswith(split["test"][0] + "_") for e in test_list)
    assert databases.count_records(work / "DB_test_1") == len(test_list)  # the DB of the new split, not the old
    with pytest.raises(recipes.StaleRecipe, match=r"prototxt: .* \(in its input dbs <- lists <- patches\)"):
        runner.run(_uc6(root, work, other, iterations=6), ("train",))


def test_interrupted_training_resumes_from_its_solverstate_with_the_same_recipe(tmp_path, small_cohort):
    root, _ = small_cohort
    work = tmp_path / "w"
    cmd = [
        "usecase6",
        "--data",
        str(root),
        "--split-dir",
        str(root),
        "--work",
        str(work),
        "--iter",
        "12",
        "--snapshot",
        "4",
        "--test-interval",
        "12",
        "--display",
        "2",
        "--stages",
        "patches,lists,dbs,prototxt,train",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *cmd],
        cwd=REPO_ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = work / "models" / "1_caffenet_train_w32_noresize_iter_4.solverstate"
    deadline = time.time() + 600
    try:
        while not (state.is_file() and state.with_suffix(".caffemodel").is_file()) and first.poll() is None:
            assert time.time() < deadline, "no snapshot after 10 minutes"
            time.sleep(0.2)
        time.sleep(0.5)  # let Caffe finish writing the pair
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # the command and its caffe train, mid-training
        first.wait()
    assert not (work / "models" / "1_caffenet_train_w32_noresize_iter_12.caffemodel").is_file()
    assert json.loads((work / "models" / "train_1.recipe.json").read_text())["state"] == "started"
    out = _cli(*cmd[:-2], "--stages", "train", "--iter", "16")  # another recipe: refused, not resumed
    assert out.returncode == 1 and "iter=12, this run asks iter=16" in out.stderr
    out = _cli(*cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train: resuming interrupted work (same recipe" in out.stderr
    assert "resuming from 1_caffenet_train_w32_noresize_iter_" in out.stderr
    assert (work / "models" / "1_caffenet_train_w32_noresize_iter_12.caffemodel").is_file()
    assert json.loads((work / "models" / "train_1.recipe.json").read_text())["state"] == "done"


# --------------------------------------------------------------------------- make


def test_make_passes_force_through(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # not `make test`'s

    def dry(*args: str) -> str:
        out = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    assert " --force" in dry("usecase6", "DATA=d", "FORCE=1") and " --force" in dry("usecase2", "DATA=d", "FORCE=yes")
    assert " --force" in dry("demo", "FORCE=1") and " --force" in dry("demo-epi", "FORCE=true")
    # ITER reaches every demo-<name> (a changed ITER is a changed recipe: refused without FORCE=1)
    for demo in ("demo-epi", "demo-lymphocyte", "demo-nuclei", "demo-radhical"):
        assert re.search(rf"-m pipeline {demo} +--iter 40\b", dry(demo, "ITER=40"))
        assert "--iter" not in dry(demo)
    assert "--force" not in dry("usecase2", "DATA=d") and "--force" not in dry("usecase2", "DATA=d", "FORCE=0")
    # the container target hands FORCE to docker/images.sh, which passes it to `make usecase6` inside
    assert 'FORCE="1"' in dry("docker-usecase6", "DATA=d", "FORCE=1") and 'FORCE=""' in dry("docker-usecase6", "DATA=d")
    # for real: patches with seed 1, then seed 2 refused, then `make ... SEED=2 FORCE=1` recomputes them
    data, work = tmp_path / "data", tmp_path / "w"
    epi.make_cohort(data, n_patients=1, size=64, seed=2)  # patches only: one small image is enough
    base = ["make", "usecase2", f"DATA={data}", f"WORK={work}", "STAGES=patches"]
    assert _cli("usecase2", "--data", str(data), "--work", str(work), "--stages", "patches").returncode == 0
    refused = _cli("usecase2", "--data", str(data), "--work", str(work), "--stages", "patches", "--seed", "2")
    assert (
        refused.returncode == 1 and "seed=1, this run asks seed=2; rerun with --force (make: FORCE=1)" in refused.stderr
    )
    forced = subprocess.run(base + ["SEED=2", "FORCE=1"], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert json.loads((work / "patches.recipe.json").read_text())["options"]["seed"] == 2
