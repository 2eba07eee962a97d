"""Hostile and damaged input (issue 28): each fault injected for real, and what the project does.

Job scripts with injected lines, damaged archives, half-written Caffe snapshots, concurrent
rebuilds of a folder by two processes, data replaced at the same path, huge images, spliced
downloads, Python layers in a user's net, the base image's build settings, and smaller ones.
docs/fault-injection.md is the table of these faults.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, atomic, extract, templates, training
from pipeline.scheduler import backends, submit

# --------------------------------------------------------------------------- 7: job scripts

INJECTED = "touch INJECTED"


def _bash_n(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "field, value",
    [
        ("partition", f"gpu\n{INJECTED}"),
        ("account", f"lab\r{INJECTED}"),
        ("qos", "long x"),  # whitespace: sbatch would read "long" and ignore the rest
        ("mem", "16G\t"),
        ("walltime", f"1:00:00\n{INJECTED}"),
        ("queue", f"q\n{INJECTED}"),
        ("email", f"me@example.org\n{INJECTED}"),
        ("directives", (f"--constraint=a100\n{INJECTED}",)),
    ],
)
def test_resource_values_with_control_characters_are_refused(tmp_path, field, value):
    from pipeline.cli import main

    res = submit.Resources(**{field: value})
    with pytest.raises(ValueError, match="control character|whitespace"):
        submit.check_resources(res)
    # through the command line: one line, nothing rendered (the reproduction of issue 28)
    work = tmp_path / "w"
    flag = {"walltime": "--time", "directives": "--directive"}.get(field, f"--{field}")
    arg = value[0] if field == "directives" else value
    sched = "pbs" if field in ("queue", "email") else "slurm"
    rc = main(["submit", "--scheduler", sched, flag, arg, "--dry-run", "demo-epi", "--work", str(work)])
    assert rc == 1
    assert not list(work.rglob("*.sbatch")) and not list(work.rglob("*.pbs"))


def test_directive_with_a_space_is_one_line(tmp_path):
    """A #PBS directive such as ``-l select=1:ncpus=4`` has a space: allowed, on its own line."""
    from pipeline.cli import usecase_command

    uc, args = usecase_command.parse_usecase_argv(["demo-epi", "--work", "w"], tmp_path)
    step = uc.job_steps(args)[1]
    res = submit.Resources(directives=("-l select=1:ncpus=4",), partition="gpu")
    submit.check_resources(res)
    out = submit.render_script(
        backends.Pbs(), step, ["demo-epi", "--work", "w"], tmp_path, REPO_ROOT, res, 0, tmp_path / "t.pbs"
    )
    assert "#PBS -l select=1:ncpus=4\n" in out.read_text()
    _bash_n(out)


def test_fold_job_scripts_quote_a_hostile_work_folder(tmp_path):
    """A work path holding ``$(...)``, a backtick and a quote: the scripts parse, and their ``cd``
    lines, run, go to that folder and execute nothing (before: ``cd "<workdir>"`` ran the command).
    (A double quote in a path is refused earlier: the rendered prototxt does not parse.)"""
    hostile = tmp_path / "runs $(touch INJECTED) `touch INJECTED2` 'x'"
    ff = templates.render_fold(hostile / "models", "1", tmp_path / "DBt", tmp_path / "DBv", tmp_path / "m", 10)
    for script in (ff.job, ff.pbs):
        _bash_n(script)
        assert INJECTED not in [line.strip() for line in script.read_text().splitlines()]
        cd = next(line for line in script.read_text().splitlines() if line.startswith("cd "))
        proc = subprocess.run(["bash", "-c", cd + " && pwd"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(ff.job.parent)
        assert not (tmp_path / "INJECTED").exists() and not (tmp_path / "INJECTED2").exists()
    # the training command names the solver as one word, whatever it holds
    exec_line = next(line for line in ff.job.read_text().splitlines() if line.startswith("exec "))
    proc = subprocess.run(
        ["bash", "-c", "set -- " + exec_line.removeprefix("exec ") + '; printf "%s\\n" "$@"'],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.splitlines()[-2:] == ["--solver", str(ff.solver)]


# --------------------------------------------------------------------------- 5: damaged archives


def _three_member_tar(path: Path, mode: str = "w") -> list[int]:
    """A tar of a.txt, b.txt, c.txt (1000 bytes each); returns the offset where each member's
    header starts, and the offset of the end-of-archive blocks last."""
    offsets = []
    with tarfile.open(path, mode) as tf:
        for i, name in enumerate(("a.txt", "b.txt", "c.txt")):
            offsets.append(tf.offset)
            info = tarfile.TarInfo(name)
            info.size = 1000
            tf.addfile(info, io.BytesIO(bytes([65 + i]) * 1000))
        offsets.append(tf.offset)
    return offsets


def test_a_tar_cut_at_a_member_boundary_is_damaged(tmp_path):
    """The reproduction of issue 28: a plain tar cut after its first member (header 512 + data 1000
    padded to 1024 = 1536 bytes) extracted "successfully" with 1 of 3 files."""
    whole = tmp_path / "whole.tar"
    offsets = _three_member_tar(whole)
    assert offsets == [0, 1536, 3072, 4608]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: offsets[1]])
    dest = tmp_path / "out"
    with pytest.raises(extract.DamagedArchive, match=r"^damaged archive: .*cut\.tar: it ends at byte 1536"):
        extract.extract(cut, dest, show_progress=False)
    assert not dest.exists() and not list(tmp_path.glob("out.partial*"))
    # cut inside a member's data: tarfile's own error becomes the same kind of line
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(extract.DamagedArchive, match=r"^damaged archive: .*cut\.tar: "):
        extract.extract(cut, dest, show_progress=False)
    assert not dest.exists()
    # the whole archive, with its end-of-archive blocks, is fine
    extract.extract(whole, dest, show_progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b.txt", "c.txt"]


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_truncated_tgz_is_one_line_and_leaves_nothing(tmp_path, keep):
    """A .tgz cut short (a download that stopped): EOFError/ReadError/zlib errors were tracebacks."""
    whole = tmp_path / "whole.tgz"
    with tarfile.open(whole, "w:gz") as tf:
        for i in range(3):
            data = np.random.RandomState(i).bytes(20_000)  # incompressible: the cut falls in the data
            info = tarfile.TarInfo(f"d/{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    cut = tmp_path / "cut.tgz"
    raw = whole.read_bytes()
    cut.write_bytes(raw[: int(len(raw) * keep)])
    dest = tmp_path / "out"
    with pytest.raises(extract.DamagedArchive, match=r"^damaged archive: .*cut\.tgz: "):
        extract.extract(cut, dest, show_progress=False)
    assert not dest.exists() and not list(tmp_path.glob("out.partial*"))


def test_a_truncated_or_corrupt_zip_is_damaged(tmp_path):
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"{i}.bin", np.random.RandomState(i).bytes(5000))
    raw = whole.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(raw[: len(raw) // 2])  # no central directory: was "neither a zip nor a tar archive"
    with pytest.raises(extract.DamagedArchive, match=r"^damaged archive: .*cut\.zip: "):
        extract.extract(cut, tmp_path / "out", show_progress=False)
    flipped = bytearray(raw)
    flipped[100] ^= 0xFF  # inside the first member's compressed data: bad CRC or bad deflate stream
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(extract.DamagedArchive, match=r"^damaged archive: .*bad\.zip: "):
        extract.extract(bad, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_damaged_archive_through_the_command_line_is_one_line(tmp_path):
    """`--data` a truncated .tgz: one line, exit status 1, no traceback, no extraction marker."""
    whole = tmp_path / "epi.tgz"
    with tarfile.open(whole, "w:gz") as tf:
        data = np.random.RandomState(0).bytes(50_000)
        info = tarfile.TarInfo("8901_00001.tif")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    cut = tmp_path / "cut" / "mine.tgz"  # not the published name: no checksum to match
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[:20_000])
    work = tmp_path / "w"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "usecase2",
            "--data",
            str(cut),
            "--work",
            str(work),
            "--stages",
            "patches",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "damaged archive: " in proc.stderr and str(cut) in proc.stderr
    assert not list(work.rglob("*_extracted.json")) and not list(work.rglob("*_extracted"))


def test_an_archive_bomb_is_refused_before_the_disk_fills(tmp_path):
    """A 40 MB member of zeros compresses to ~40 KB: with a 10 MB cap it is refused from its header
    before any byte is written; a header claiming more than the free disk space likewise."""
    bomb = tmp_path / "bomb.tgz"
    with tarfile.open(bomb, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 40_000_000
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(extract.DamagedArchive, match=r"40000000 bytes .* more than the 10000000 allowed"):
        extract.extract(bomb, tmp_path / "out", show_progress=False, max_bytes=10_000_000)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.partial*"))
    many = tmp_path / "many.tar"
    with tarfile.open(many, "w") as tf:
        for i in range(6):
            tf.addfile(tarfile.TarInfo(f"{i}.txt"), io.BytesIO(b""))
    with pytest.raises(extract.DamagedArchive, match="more than 5 members"):
        extract.extract(many, tmp_path / "out", show_progress=False, max_members=5)
    # a header claiming more than the free space (GNU base-256 size; the data is not there)
    free = shutil.disk_usage(tmp_path).free
    huge = tmp_path / "huge.tar"
    with open(huge, "wb") as fh:
        info = tarfile.TarInfo("huge.bin")
        info.size = free + (1 << 30)
        fh.write(info.tobuf(format=tarfile.GNU_FORMAT))
        fh.write(bytes(4096))
    with pytest.raises(extract.DamagedArchive, match=r"free on .*; refused"):
        extract.extract(huge, tmp_path / "out", show_progress=False, max_bytes=1 << 62)
    # zip: the central directory's sizes are summed before anything is written
    zbomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zbomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(20_000_000))
    with pytest.raises(extract.DamagedArchive, match=r"20000000 bytes .* more than the 10000000 allowed"):
        extract.extract(zbomb, tmp_path / "out", show_progress=False, max_bytes=10_000_000)


# --------------------------------------------------------------------------- 3: half-written snapshots


@pytest.fixture(scope="module")
def trained(tmp_path_factory, caffe):
    """A real 20-iteration training (snapshots at 10 and 20) of a 12-patch set: (solver, prefix)."""
    from pipeline import databases, lists
    from tests.conftest import write_pngs

    root = tmp_path_factory.mktemp("snap")
    imgs = write_pngs(root / "subs", 12)
    lst = root / "list.txt"
    lists.write_list(lst, [lists.Entry(n, lab) for n, _, lab in imgs], sep=" ")
    databases.build_db(root / "subs", lst, root / "DB_train_1")
    databases.compute_mean(root / "DB_train_1", root / "mean.binaryproto")
    sp = templates.SolverParams(max_iter=20, test_interval=10, snapshot=10, display=5, random_seed=1)
    ff = templates.render_fold(
        root / "models", "1", root / "DB_train_1", None, root / "mean.binaryproto", 12, solver=sp, batch_size=4
    )
    res = training.train(ff.solver, show_progress=False)
    assert not res.skipped and res.model.name == "1_caffenet_train_w32_iter_20.caffemodel"
    return ff.solver, ff.snapshot_prefix


def _pair(prefix: Path, it: int) -> tuple[Path, Path]:
    return prefix.with_name(f"{prefix.name}_iter_{it}.caffemodel"), prefix.with_name(
        f"{prefix.name}_iter_{it}.solverstate"
    )


def _layer_boundary(model: Path, keep: int) -> int:
    """The byte length of ``model`` up to the end of its first ``keep`` layers: a protobuf cut there
    still parses (as a net with fewer layers)."""
    from pipeline.caffe_env import caffe_pb2

    net = caffe_pb2().NetParameter()
    net.ParseFromString(model.read_bytes())
    del net.layer[keep:]
    head = net.SerializeToString()
    assert model.read_bytes().startswith(head)
    return len(head)


@pytest.mark.parametrize("damage", ["state-half", "state-empty-history", "model-half", "model-layer-boundary"])
def test_a_half_written_final_snapshot_is_not_finished_training(trained, damage, caplog):
    """Caffe writes snapshots straight to their final names: a crash during the final snapshot left
    a truncated model or state that counted as finished training (the model) or broke every resume
    (the state). Now the pair must parse and agree, and training resumes from the newest good pair."""
    import logging

    solver, prefix = trained
    model, state = _pair(prefix, 20)
    good_model, good_state = model.read_bytes(), state.read_bytes()
    assert training.check_snapshot(model, state, training.train_layer_names(solver)) is None
    if damage == "state-half":
        state.write_bytes(good_state[: len(good_state) // 2])
    elif damage == "state-empty-history":  # cut where the history blobs start: a valid, shorter message
        from pipeline.caffe_env import caffe_pb2

        st = caffe_pb2().SolverState()
        st.ParseFromString(good_state)
        head = caffe_pb2().SolverState(iter=st.iter, learned_net=st.learned_net).SerializeToString()
        assert good_state.startswith(head) and len(head) < len(good_state)
        state.write_bytes(head)
    elif damage == "model-half":
        model.write_bytes(good_model[: len(good_model) // 2])
    else:
        model.write_bytes(good_model[: _layer_boundary(model, 5)])
    why = training.check_snapshot(model, state, training.train_layer_names(solver))
    assert why is not None
    with caplog.at_level(logging.INFO, logger="pipeline.training"):
        res = training.train(solver, show_progress=False)
    assert not res.skipped
    assert res.resumed_from == _pair(prefix, 10)[1]
    assert f"{model.name if 'model' in damage else state.name}" in caplog.text
    assert "resuming from 1_caffenet_train_w32_iter_10.solverstate" in caplog.text
    assert training.check_snapshot(model, state, training.train_layer_names(solver)) is None
    assert training.train(solver, show_progress=False).skipped


def test_no_good_pair_trains_from_the_start(trained, caplog):
    import logging

    solver, prefix = trained
    for it in (10, 20):
        m, s = _pair(prefix, it)
        s.write_bytes(s.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="pipeline.training"):
        res = training.train(solver, show_progress=False)
    assert not res.skipped and res.resumed_from is None
    assert "no snapshot pair parses: training from the start" in caplog.text
    assert training.check_snapshot(*_pair(prefix, 20), training.train_layer_names(solver)) is None


# --------------------------------------------------------------------------- 1: concurrent folder rebuilds

_REPLACER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from pipeline import atomic
final, tag, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if sys.argv[4] == "rename":  # as on a file system that cannot exchange two paths (some NFS)
    atomic._renameat2 = None
failed = 0
for i in range(n):
    try:
        with atomic.atomic_path(final, is_dir=True) as tmp:
            tmp.mkdir()
            for k in range(3):
                (tmp / f"{{k}}.txt").write_text(f"{{tag}} {{i}}")
    except OSError as exc:
        failed += 1
        print(type(exc).__name__, exc, file=sys.stderr)
print(failed)
"""

_READER = """
import os, sys, time
final, stop = sys.argv[1], sys.argv[2]
looks = missing = 0
while not os.path.exists(stop):
    looks += 1
    missing += not os.path.isdir(final)
print(looks, missing)
"""


@pytest.mark.parametrize("how", ["exchange", "rename"])
def test_two_processes_replacing_one_folder_never_fail_and_readers_always_see_it(tmp_path, how):
    """The reproduction of issue 28: two processes replacing the same folder 300 times each (248 of
    600 failed: ENOTEMPTY on the rename, FileNotFoundError inside rmtree), a third looking at it.
    Where paths cannot be exchanged in one step ("rename"), the old folder is moved aside first:
    readers may then miss it for a moment, but no writer fails."""
    final = tmp_path / "view"
    with atomic.atomic_path(final, is_dir=True) as tmp:
        tmp.mkdir()
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(final), str(stop)], stdout=subprocess.PIPE, text=True)
    code = _REPLACER.format(repo=str(REPO_ROOT))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(final), tag, "300", how],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outs = [w.communicate(timeout=120) for w in writers]
    stop.touch()
    looks, missing = map(int, reader.communicate(timeout=30)[0].split())
    assert [int(o.split()[-1]) for o, _ in outs] == [0, 0], [e[-2000:] for _, e in outs]
    assert looks > 0 and (missing == 0 or how == "rename")
    assert sorted(p.name for p in final.iterdir()) == ["0.txt", "1.txt", "2.txt"]
    texts = {p.read_text() for p in final.iterdir()}
    assert texts in ({"a 299"}, {"b 299"})  # one worker's whole last folder, never a mix
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("view", "stop")] == []  # no leftovers


_PRESENTER = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from pipeline import layouts
from pipeline.usecases import datasets
match = layouts.find(Path(sys.argv[1]), datasets.EPI.layouts)
for _ in range(int(sys.argv[3])):
    view = layouts.present(match, (datasets.EPI_SIDE_BY_SIDE,), Path(sys.argv[2]))
print(view)
"""


def test_cluster_tasks_presenting_one_data_folder_at_once(tmp_path):
    """Array tasks starting together each call layouts.present on the same data: the link folder is
    built once and then left alone (its inode does not change), and no task fails."""
    from tests.archive_builders import epi_files

    data = tmp_path / "data"
    for name, src in epi_files(tmp_path / "src", 3).items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(src.read_bytes())
    code = _PRESENTER.format(repo=str(REPO_ROOT))
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(data), str(cache), "20"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    view = Path(outs[0][0].split()[-1])
    assert outs[1][0].split()[-1] == str(view)
    names = sorted(p.name for p in view.iterdir())
    assert names == sorted(f"{8900 + i}_00001{s}" for i in range(3) for s in (".tif", "_mask.png"))
    inode = view.stat().st_ino
    again = subprocess.run([sys.executable, "-c", code, str(data), str(cache), "1"], capture_output=True, text=True)
    assert again.returncode == 0 and view.stat().st_ino == inode  # matching: not rebuilt
    # a source that changed (an image added) is presented again
    (data / "8903_00001.tif").write_bytes((data / "8900_00001.tif").read_bytes())
    (data / "masks" / "8903_00001_mask.png").write_bytes((data / "masks" / "8900_00001_mask.png").read_bytes())
    again = subprocess.run([sys.executable, "-c", code, str(data), str(cache), "1"], capture_output=True, text=True)
    assert again.returncode == 0 and len(list(view.iterdir())) == 8


# --------------------------------------------------------------------------- 4a: data replaced at the same path


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_source_recipe_identifies_data_by_content(tmp_path):
    from pipeline import recipes

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"one")
    first = recipes.source(folder)
    assert recipes.source(folder)["hash"] == first["hash"]  # the same listing: the same recipe
    (folder / "a.tif").write_bytes(b"two")  # same name and size, new modification time
    os.utime(folder / "a.tif", ns=(1, 1))
    second = recipes.source(folder)
    assert second["hash"] != first["hash"] and second["options"]["path"] == first["options"]["path"]
    # a run's work folder inside the data folder is not part of the data
    work = folder / "runs" / "w"
    third = recipes.source(folder, memo=work / "data")
    (work / "data").mkdir(parents=True)
    (work / "patches_report.json").write_text("{}")
    assert recipes.source(folder, memo=work / "data")["hash"] == third["hash"]
    archive = tmp_path / "epi.tgz"
    archive.write_bytes(b"archive one")
    a1 = recipes.source(archive)
    assert a1["options"]["content"] == "sha256 " + hashlib.sha256(b"archive one").hexdigest()
    archive.write_bytes(b"archive two")
    assert recipes.source(archive)["options"]["content"] == "sha256 " + hashlib.sha256(b"archive two").hexdigest()


def test_data_replaced_at_the_same_path_is_not_reused(tmp_path):
    """An image of the data folder replaced (same path, new pixels): the patches made from the old
    one were skipped as "already done"; now the stage is refused as made from other data."""
    from pipeline.usecases import epi

    data = tmp_path / "data"
    epi.make_cohort(data, n_patients=3, size=64, seed=2)
    work = tmp_path / "w"
    argv = ("usecase2", "--data", str(data), "--work", str(work), "--stages", "patches", "--max-positive", "5")
    first = _cli(*argv)
    assert first.returncode == 0, first.stderr[-2000:]
    again = _cli(*argv)
    assert again.returncode == 0 and "patches: already done with this recipe" in again.stderr
    img = data / "8001_00001.tif"
    pixels = np.asarray(Image.open(img))
    Image.fromarray(255 - pixels).save(img)
    replaced = _cli(*argv)
    assert replaced.returncode == 1 and "Traceback" not in replaced.stderr, replaced.stderr[-2000:]
    assert "patches: " in replaced.stderr and "was made with content=" in replaced.stderr
    assert "--force" in replaced.stderr
    forced = _cli(*argv, "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]


# --------------------------------------------------------------------------- 2: huge images given to infer


def sparse_tiff(path: Path, height: int, width: int, tile: int = 1024) -> Path:
    """A valid RGB tiled TIFF of ``height`` x ``width`` whose tiles are all absent (offset and byte
    count 0: readers fill them with zeros), so a 100k x 100k image is a file of a few hundred KB."""
    import struct

    n = -(-height // tile) * -(-width // tile)
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value or offset
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, None),  # BitsPerSample 8, 8, 8
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 2),  # RGB
        (277, 3, 1, 3),
        (284, 3, 1, 1),  # chunky
        (322, 4, 1, tile),
        (323, 4, 1, tile),
        (324, 4, n, None),  # TileOffsets
        (325, 4, n, None),  # TileByteCounts
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    extra = 8 + ifd_size
    blobs, out = b"", []
    for tag, typ, count, value in entries:
        if value is None:
            data = struct.pack("<3H", 8, 8, 8) if tag == 258 else bytes(4 * n)
            out.append(struct.pack("<HHII", tag, typ, count, extra + len(blobs)))
            blobs += data + bytes(len(data) % 2)
        else:
            fmt = "<HHIHH" if typ == 3 else "<HHII"
            out.append(
                struct.pack(fmt, tag, typ, count, value, 0) if typ == 3 else struct.pack(fmt, tag, typ, count, value)
            )
    path.write_bytes(
        b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + b"".join(out) + bytes(4) + blobs
    )
    return path


def _limited(gib: int):
    """preexec_fn: at most ``gib`` GiB of address space (a run that would load the whole image fails
    with MemoryError instead of the machine's OOM killer)."""
    import resource

    def f():
        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))

    return f


def test_image_size_is_read_from_the_header(tmp_path):
    from pipeline.inference import images

    big = sparse_tiff(tmp_path / "big.tif", 100_000, 100_000)
    assert big.stat().st_size < 200_000
    assert images.image_size(big) == (100_000, 100_000)
    png = tmp_path / "small.png"
    Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(png)
    assert images.image_size(png) == (7, 9)
    with pytest.raises(images.ImageTooLarge, match=r"big\.tif: 100000 x 100000 pixels, .* infer-wsi"):
        images.check_size(big, max_pixels=100_000_000)
    images.check_size(png, max_pixels=100)  # 63 pixels
    with pytest.raises(images.ImageTooLarge, match=r"after --resize 4"):
        images.check_size(png, max_pixels=100, factor=4)  # 28 x 36 = 1008 pixels once resized


def test_infer_refuses_a_huge_tiff_before_loading_it(trained, tmp_path):
    """``infer`` on a 100k x 100k TIFF: read whole, this is 30 GB of uint8 and twice that in floats
    (an OOM kill with no hint; here, under a 4 GiB address-space limit, a MemoryError). Now one line
    from its header, before the model is loaded, pointing to infer-wsi; --max-pixels 0 lifts it."""
    solver, prefix = trained
    model, mean = _pair(prefix, 20)[0], prefix.parent.parent / "mean.binaryproto"
    big = sparse_tiff(tmp_path / "slide.tif", 100_000, 100_000)
    argv = [sys.executable, "-m", "pipeline", "infer", str(big), "--model", str(model), "--mean", str(mean)]
    proc = subprocess.run(
        argv + ["--out", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited(4),
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{big}: 100000 x 100000 pixels" in proc.stderr and "infer-wsi" in proc.stderr
    assert "--max-pixels" in proc.stderr
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("dtype, mode", [(np.uint8, "RGB"), (np.uint16, None)])
def test_images_load_as_float32_without_a_float64_copy(tmp_path, dtype, mode):
    """caffe.io.load_image's values (skimage.img_as_float, then float32) bit for bit, without the
    float64 copy: a 1000 x 1000 RGB image peaked at 3 MB raw + 24 MB float64 + 12 MB float32."""
    import tracemalloc

    import skimage
    import tifffile

    from pipeline.imageio import load_image

    rng = np.random.RandomState(0)
    raw = rng.randint(0, np.iinfo(dtype).max + 1, (1000, 1000, 3)).astype(dtype)
    path = tmp_path / "im.tif"
    tifffile.imwrite(path, raw, photometric="rgb")
    expected = skimage.img_as_float(raw).astype(np.float32)
    load_image(path)  # imports and the reader's first-use allocations out of the measurement
    tracemalloc.start()
    img = load_image(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert img.dtype == np.float32 and np.array_equal(img, expected)
    itemsize = np.dtype(dtype).itemsize
    # the pixels as stored and the float32 image, plus at most 5 MB of temporaries (the table lookup
    # goes a million values at a time); before: a float64 copy of 24 MB besides
    assert peak < (3 * itemsize + 12 + 5) * 1_000_000, peak


# --------------------------------------------------------------------------- 6: resumed downloads

V1 = bytes(range(256)) * 1600  # 409,600 bytes
V2 = bytes(reversed(range(256))) * 1600  # the file changed upstream: same length, other bytes


class _Changing(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` with its ``etag`` (and a Last-Modified); honours ``Range: bytes=N-`` and, as
    HTTP says, ``If-Range``: a range only while the validator still matches, else the whole file."""

    body, etag, cut = V1, '"v1"', None
    honour_if_range = True
    wrong_start = False  # answer a range request with the file from byte 0 as a 206
    requests: list = []

    def do_GET(self):  # noqa: N802
        cls = type(self)
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        cls.requests.append((rng, if_range))
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if rng and cls.honour_if_range and if_range is not None and if_range != cls.etag:
            start = 0  # the validator does not match: the whole file, 200
        if cls.wrong_start and rng:
            start, status = 0, 206
        else:
            status = 206 if start else 200
        body = cls.body[start:]
        self.send_response(status)
        self.send_header("ETag", cls.etag)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(cls.body) - 1}/{len(cls.body)}")
        self.end_headers()
        self.wfile.write(body[: cls.cut] if cls.cut is not None else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def changing():
    _Changing.body, _Changing.etag, _Changing.cut = V1, '"v1"', None
    _Changing.honour_if_range, _Changing.wrong_start, _Changing.requests = True, False, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Changing)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _interrupted(url: str, dest: Path) -> int:
    from pipeline import download

    _Changing.cut = 300_000
    with pytest.raises(download.DownloadError, match="rerun the same command to resume"):
        download.fetch(url, dest, show_progress=False, timeout=5)
    _Changing.cut = None
    return (dest.with_name(dest.name + ".part")).stat().st_size


@pytest.mark.parametrize("server_kind", ["honours If-Range", "ignores If-Range"])
def test_a_file_changed_upstream_is_never_spliced(changing, tmp_path, server_kind):
    """An interrupted download of a file without a published checksum, resumed after the file
    changed upstream: before, the part of the old file and the rest of the new one were joined
    (a 206 appended without a validator). Now the part keeps the validator (ETag), the resume sends
    If-Range, and a 206 whose ETag differs is not appended: the new file is fetched whole."""
    from pipeline import download

    dest = tmp_path / "f.bin"
    have = _interrupted(f"{changing}/f.bin", dest)
    assert have == 4 * 65536
    _Changing.body, _Changing.etag = V2, '"v2"'
    _Changing.honour_if_range = server_kind == "honours If-Range"
    out = download.fetch(f"{changing}/f.bin", dest, show_progress=False, timeout=5)
    assert out.read_bytes() == V2
    assert _Changing.requests[1] == (f"bytes={have}-", '"v1"')
    assert not dest.with_name("f.bin.part").exists() and not dest.with_name("f.bin.part.json").exists()


def test_a_range_answered_from_the_wrong_byte_is_not_appended(changing, tmp_path):
    from pipeline import download

    dest = tmp_path / "g.bin"
    _interrupted(f"{changing}/g.bin", dest)
    _Changing.wrong_start = True  # "206" with bytes 0-...: appending would duplicate the start
    out = download.fetch(f"{changing}/g.bin", dest, show_progress=False, timeout=5)
    assert out.read_bytes() == V1


def test_an_unchanged_file_still_resumes(changing, tmp_path):
    from pipeline import download

    dest = tmp_path / "h.bin"
    have = _interrupted(f"{changing}/h.bin", dest)
    out = download.fetch(f"{changing}/h.bin", dest, show_progress=False, timeout=5)
    assert out.read_bytes() == V1 and _Changing.requests[1] == (f"bytes={have}-", '"v1"')
    assert len(_Changing.requests) == 2  # one resumed request, not the whole file again


def test_a_mirrors_file_is_checked_by_hash_whatever_its_name(changing, tmp_path):
    """`data fetch --url` of a mirror whose file has another name: before, it was not checked at all
    (the published sha256 applied only to the published name)."""
    from dataclasses import replace

    from pipeline import data, download
    from pipeline.usecases import datasets

    epi = replace(datasets.EPI, sha256=hashlib.sha256(V1).hexdigest())
    path = data.fetch(epi, tmp_path / "a", url=f"{changing}/mirror-copy.tgz", show_progress=False)
    assert path.name == "mirror-copy.tgz"
    assert json.loads(path.with_name("mirror-copy.tgz.json").read_text())["verified"] is True
    other = replace(datasets.EPI, sha256="0" * 64)
    with pytest.raises(
        download.ChecksumError,
        match=r"mirror-copy\.tgz: sha256 .* does not match the expected 0{64}.*published epi\.tgz",
    ):
        data.fetch(other, tmp_path / "b", url=f"{changing}/mirror-copy.tgz", show_progress=False)
    assert not (tmp_path / "b" / "mirror-copy.tgz").exists()
    # deliberately another version: accepted unverified with --no-verify
    path = data.fetch(other, tmp_path / "b", url=f"{changing}/mirror-copy.tgz", verify_hash=False, show_progress=False)
    assert path.read_bytes() == V1


# --------------------------------------------------------------------------- 8: Python layers in a user's net

_EVIL = """
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the module of a Python layer ran")
import caffe


class Layer(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        pass
"""


def _python_layer_deploy(tmp_path: Path) -> tuple[Path, Path]:
    """The template's deploy net with a Python layer (module evil_layer) after its input; the module
    writes IMPORTED beside itself when imported."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "evil_layer.py").write_text(_EVIL)
    text = templates.deploy_text()
    first = text.index("layer {")
    evil = 'layer {\n  name: "evil"\n  type: "Python"\n  bottom: "data"\n  top: "data"\n'
    evil += '  python_param { module: "evil_layer" layer: "Layer" }\n}\n'
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(text[:first] + evil + text[first:])
    return deploy, mods


def test_a_python_layer_in_a_users_deploy_net_is_refused(trained, tmp_path):
    solver, prefix = trained
    model, mean = _pair(prefix, 20)[0], prefix.parent.parent / "mean.binaryproto"
    deploy, mods = _python_layer_deploy(tmp_path)
    img = tmp_path / "im.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(img)
    env = dict(os.environ, PYTHONPATH=f"{mods}{os.pathsep}{REPO_ROOT}")
    argv = [sys.executable, "-m", "pipeline", "infer", str(img), "--model", str(model), "--mean", str(mean)]
    argv += ["--deploy", str(deploy), "--out", str(tmp_path / "out")]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (mods / "IMPORTED").exists()
    assert f"{deploy}: layer 'evil' is a Python layer (module evil_layer)" in proc.stderr
    assert "--allow-python-layers" in proc.stderr
    # allowed by name: the module is imported (and runs as a layer of the net)
    proc = subprocess.run(
        argv + ["--allow-python-layers"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert (mods / "IMPORTED").exists(), proc.stderr[-2000:]


def test_a_python_layer_in_a_training_net_is_refused(tmp_path):
    from pipeline import caffe_env

    deploy, mods = _python_layer_deploy(tmp_path)
    with pytest.raises(caffe_env.PythonLayerRefused, match=r"layer 'evil' is a Python layer"):
        caffe_env.refuse_python_layers(deploy)
    caffe_env.refuse_python_layers(deploy, allow=True)
    plain = tmp_path / "plain.prototxt"
    plain.write_text(templates.deploy_text())
    caffe_env.refuse_python_layers(plain)


# --------------------------------------------------------------------------- 10: smaller ones


@pytest.mark.parametrize("name", ["a[1].png", "b*.png", "c?.png"])
def test_partials_of_names_with_glob_characters_are_cleaned_and_only_theirs(tmp_path, name):
    """remove_stale_partials globbed ``<name>.partial-*`` unescaped: "a[1].png" never found its own
    leftovers, and "b*.png" took another file's (a dead writer's partial of "bX.png" is not its own)."""
    final = tmp_path / name
    dead = 2**22 + 12345  # above the default pid_max: no such process
    mine = tmp_path / f"{name}{atomic.PARTIAL}-{atomic.HOST}@{atomic.PIDNS}-{dead}"
    mine.write_text("left by a killed writer")
    other_final = tmp_path / name.replace("[1]", "1").replace("*", "X").replace("?", "Y")
    other = tmp_path / f"{other_final.name}{atomic.PARTIAL}-{atomic.HOST}@{atomic.PIDNS}-{dead}"
    other.write_text("another file's leftover")
    atomic.remove_stale_partials(final)
    assert not mine.exists()
    assert other.exists()  # removed only when that file is written


def test_absurd_objective_powers_are_refused():
    from pipeline.wsi import magnification as mag

    with pytest.raises(ValueError, match=r"objective power 4000 .*not plausible.*--mpp"):
        mag.slide_objective({"openslide.objective-power": "4000"})
    with pytest.raises(ValueError, match=r"objective power 0.001 .*not plausible"):
        mag.slide_objective({"openslide.objective-power": "0.001"})
    with pytest.raises(ValueError, match=r"--mpp 1e-05 gives .*not plausible"):
        mag.slide_objective({}, mpp=1e-5)  # 10 / 1e-5 = 1 000 000x
    with pytest.raises(ValueError, match=r"model's magnification 1e\+06"):
        mag.plan_scale([(1000, 1000)], [1.0], (40.0, "objective-power", 0.25), 1e6)
    # a model at 80x on a 2x slide: 40-fold enlargement of every pixel side
    with pytest.raises(ValueError, match=r"enlarge the slide 40-fold"):
        mag.plan_scale([(1000, 1000)], [1.0], (2.0, "objective-power", None), 80.0)
    assert mag.slide_objective({"openslide.objective-power": "1.25"})[0] == 1.25  # low-power scans stay


_READ_THUMB = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
import numpy as np
from pipeline.wsi.slide import Slide
from pipeline.wsi.tissue import block_mean
with Slide(Path(sys.argv[1])) as s:
    thumb, ds = s.read_downsampled(32)
# VmHWM: the peak resident memory of this program's own address space; ru_maxrss is not, as Linux
# carries the parent's peak over when a child is spawned from a large process (pytest, late in a run)
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024
np.save(sys.argv[2], thumb)
print(rss, ds)
"""


def test_the_tissue_thumbnail_of_a_wide_slide_is_read_in_tiles(tmp_path):
    """A single-level slide 30 000 pixels wide: the thumbnail was read in full-width strips (1024 rows
    x 30 000 x 4 bytes, a float copy and a float64 block mean: 1.6 GB peak here, 5 GB for a
    100k-wide slide). Now in 1024 x 1024 tiles: the same thumbnail, a fraction of the memory."""
    from pipeline.wsi.tissue import block_mean
    from tests.wsi_slides import write_slide

    rgb = np.full((1024, 30_000, 3), 240, np.uint8)
    rgb[200:800, 1000:29_000] = (180, 90, 150)
    slide = write_slide(tmp_path / "wide.tif", rgb, mpp=0.25, downsamples=(1,), tile=512, layout="generic")
    del rgb
    proc = subprocess.run(
        [sys.executable, "-c", _READ_THUMB.format(repo=str(REPO_ROOT)), str(slide), str(tmp_path / "t.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss_mb, ds = proc.stdout.split()
    thumb = np.load(tmp_path / "t.npy")
    expected = np.full((1024, 30_000, 3), 240, np.uint8)
    expected[200:800, 1000:29_000] = (180, 90, 150)
    assert float(ds) == 32.0 and np.array_equal(thumb, block_mean(expected, 32))
    assert int(rss_mb) < 400, rss_mb  # the interpreter, numpy, OpenSlide and a few tiles
