"""Claims shared by step-5 workers: exclusive, heartbeat, takeover of dead claims without a race,
and real worker processes on one folder with one of them killed mid-image."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import REPO_ROOT, atomic, inference
from pipeline.claims import Claim, claimed
from tests.conftest import RELEASED, need
from tests.test_inference import he_image

#: Generous upper bound for a condition a test waits for (a guard against hanging, not a timing check).
PATIENCE = 300


def wait_until(cond, what: str) -> None:
    end = time.monotonic() + PATIENCE
    while not cond():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.05)


def other_hosts_claim(lock: Path, generation: int = 0, age: float = 0.0) -> Path:
    """A claim file as a worker on another machine writes it, last heartbeat ``age`` seconds ago."""
    path = lock.with_name(f"{lock.name}.{generation}")
    path.write_text(f"not-{socket.gethostname()} 4026531836 12345 feedface\n")
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def test_a_claim_is_exclusive_until_released(tmp_path):
    a, b = Claim(tmp_path / ".x.lock"), Claim(tmp_path / ".x.lock")
    assert a.acquire() and a.generation == 0
    assert not b.acquire()  # a live worker (this process) holds it
    assert a.still_held()
    a.release()
    assert not list(tmp_path.iterdir())
    assert b.acquire() and b.generation == 0
    b.release()


def test_another_hosts_claim_is_dead_only_after_several_missed_heartbeats(tmp_path):
    lock = tmp_path / ".x.lock"
    # heartbeat 10 s, dead after 5 missed beats = 50 s: 45 s without a beat is still alive
    other_hosts_claim(lock, age=45)
    assert not Claim(lock, heartbeat=10, misses=5).acquire()
    other_hosts_claim(lock, age=55)
    c = Claim(lock, heartbeat=10, misses=5)
    assert c.acquire() and c.generation == 1  # taken over as the next generation
    assert [p.name for p in tmp_path.iterdir()] == [".x.lock.1"]  # the dead generation removed
    c.release()


HOLDER = """
import sys, time
from pathlib import Path
from pipeline.claims import Claim, claimed
c = Claim(Path(sys.argv[1]), heartbeat=float(sys.argv[2]))
print(c.acquire(), flush=True)
time.sleep(3600)
"""


def test_a_killed_workers_claim_is_taken_over_at_once_on_the_same_host(tmp_path):
    lock = tmp_path / ".x.lock"
    # heartbeat one hour: only the dead process, not a missed heartbeat, can free the claim
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), "3600"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "True"
    assert not Claim(lock, heartbeat=3600).acquire()  # alive: not taken
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    c = Claim(lock, heartbeat=3600)
    assert c.acquire() and c.generation == 1
    c.release()


def test_the_heartbeat_keeps_a_slow_owner_alive(tmp_path):
    lock = tmp_path / ".x.lock"
    owner = Claim(lock, heartbeat=0.05, misses=2)
    assert owner.acquire()
    f = lock.with_name(".x.lock.0")
    os.utime(f, (1e9, 1e9))  # as if the last beat were long ago
    wait_until(lambda: f.stat().st_mtime > 1e9, "the heartbeat thread to touch the claim")
    owner.release()
    assert not f.exists()


def test_an_owner_judged_dead_sees_the_takeover_and_leaves_the_new_claim(tmp_path):
    lock = tmp_path / ".x.lock"
    slow = Claim(lock, heartbeat=3600)
    assert slow.acquire()
    old = time.time() - 10
    os.utime(lock.with_name(".x.lock.0"), (old, old))
    taker = Claim(lock, heartbeat=1, misses=2)  # to it, 10 s without a beat is dead
    assert taker.acquire() and taker.generation == 1
    assert not slow.still_held() and not slow.beat(force=True)
    slow.release()  # must not remove the taker's claim
    assert lock.with_name(".x.lock.1").exists() and taker.still_held()
    taker.release()


RACER = """
import sys, time
from pathlib import Path
from pipeline.claims import Claim, claimed
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
c = Claim(Path(sys.argv[1]), heartbeat=1, misses=10)
print(c.acquire(), flush=True)
sys.stdin.read()                    # hold (no release) until the test has collected every answer
"""


def test_many_workers_taking_over_one_dead_claim_give_one_owner(tmp_path):
    lock, go = tmp_path / ".x.lock", tmp_path / "go"
    other_hosts_claim(lock, age=3600)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(lock), str(go)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    time.sleep(1)  # let them start polling (a missed start only makes the race milder)
    go.touch()
    answers = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.communicate("")
    assert sorted(answers) == ["False"] * 7 + ["True"]
    assert [p.name for p in tmp_path.glob(".x.lock.*")] == [".x.lock.1"]


WORKER = """
import json, os, sys, time
from pathlib import Path
from pipeline import inference
model, mean, src, out, hang = sys.argv[1:6]
eng = inference.make_engine("exact", model, mean, net_dir=Path(out) / f"nets{os.getpid()}")
if hang:                              # compute the first image, then never write it: killed mid-image
    real = eng.run
    def run(img, opts, progress=None):
        prob = real(img, opts, progress)
        Path(hang).write_text(str(os.getpid()))
        time.sleep(3600)
    eng.run = run
imgs = sorted(Path(src).glob("*.png"))
res = inference.infer_images(imgs, eng, Path(out), inference.Options(), show_progress=False, heartbeat=0.5)
print(json.dumps(res["computed"]))
"""


def test_workers_with_one_killed_mid_image_write_every_image_once(caffe, tmp_path):
    d = need(RELEASED / "uc2-epi")
    model, mean = d / "1_caffenet_train_w32_iter_600000.caffemodel", d / "DB_train_w32_1.binaryproto"
    src, out, hang = tmp_path / "in", tmp_path / "out", tmp_path / "hung"
    src.mkdir()
    for i in range(6):
        Image.fromarray((he_image(12, 12, seed=i) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    cmd = [sys.executable, "-c", WORKER, str(model), str(mean), str(src), str(out)]
    victim = subprocess.Popen(cmd + [str(hang)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    workers: list[subprocess.Popen] = []
    try:
        wait_until(hang.exists, "the first worker to be in the middle of img0")
        assert list(out.glob(".img0.lock.*")) and not list(out.glob("img0_*"))
        workers = [subprocess.Popen(cmd + [""], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        done = [json.loads(w.communicate(timeout=PATIENCE)[0].strip().splitlines()[-1]) for w in workers]
    finally:  # never leave a worker behind when the test fails
        for p in (victim, *workers):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [w.returncode for w in workers] == [0, 0]
    names = sorted(Path(p).name for p in done[0] + done[1])
    assert names == [f"img{i}.png" for i in range(6)]  # each image computed exactly once
    assert str(src / "img0.png") in done[0] + done[1]  # the killed worker's image finished
    assert not list(out.glob(".*lock*")) and not list(out.glob("*.tmp*"))
    # complete and right: the outputs equal this process's own computation
    eng = inference.make_engine("exact", model, mean, net_dir=tmp_path / "nets")
    for i in range(6):
        prob_png, cls_png = inference.encode_outputs(
            eng.run(inference.load_resized(src / f"img{i}.png", 1.0), inference.Options())
        )
        assert np.array_equal(np.asarray(Image.open(out / f"img{i}_prob.png")), prob_png)
        assert np.array_equal(np.asarray(Image.open(out / f"img{i}_class.png")), cls_png)


def test_claimed_skips_done_and_held_work_and_always_releases(tmp_path):
    lock = tmp_path / "a.lock"
    files = lambda: sorted(p.name for p in tmp_path.glob("a.lock.*"))  # noqa: E731
    with claimed(lock, done=True) as mine:
        assert mine is False and not files()  # finished: not even a claim file
    with claimed(lock) as mine:
        assert mine is True and files() == ["a.lock.0"]  # ours for the block
    assert not files()  # released after it
    other = Claim(lock)
    assert other.acquire()
    with claimed(lock) as mine:
        assert mine is False  # another worker holds it
    assert files() == ["a.lock.0"]  # and keeps it
    other.release()
    with pytest.raises(RuntimeError), claimed(lock) as mine:
        assert mine
        raise RuntimeError("work failed")
    assert not files()  # released when the work raises


def test_progress_per_chunk_and_a_summary_counting_computed_pixels(caffe, tmp_path, caplog):
    d = need(RELEASED / "uc2-epi")
    eng = inference.make_engine(
        "exact",
        d / "1_caffenet_train_w32_iter_600000.caffemodel",
        d / "DB_train_w32_1.binaryproto",
        net_dir=tmp_path / "nets",
    )
    img = he_image(10, 9)
    calls: list[int] = []
    eng.run(img, inference.Options(batch=16), calls.append)
    # rows 1..9 and columns 1..8 computed: 9 x 8 = 72 windows; a forward of batch 16 holds 8 windows and
    # their 8 mirrors, so a chunk is one row of 8 windows: 9 x 8
    assert calls == [8] * 9
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "a.png")
    res = inference.infer_images(
        [tmp_path / "a.png"], eng, tmp_path / "out", inference.Options(stride=4), show_progress=False
    )
    # stride 4 on 10 x 9: rows 1, 5, 9 and columns 1, 5: 6 pixels computed (not the 90 written)
    assert res["pixels"] == 6 and res["engine"] == "exact"
    summary = [r.getMessage() for r in caplog.records if "step 5 summary" in r.getMessage()]
    assert len(summary) == 1 and "6 pixels computed" in summary[0] and "engine exact" in summary[0]


def test_claims_of_dead_owners_of_finished_work_are_cleared(tmp_path):
    """A worker killed after writing its result, before releasing its claim, leaves the claim file;
    clear_dead removes it (the work is done, nobody takes it over) and keeps a live owner's."""
    import subprocess
    import sys

    from pipeline.claims import Claim, clear_dead_in

    dead_lock, live_lock = tmp_path / ".dead.lock", tmp_path / ".live.lock"
    unfinished = tmp_path / ".unfinished.lock"
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom pipeline.claims import Claim\n"
        "c = Claim(Path(sys.argv[1]))\nassert c.acquire()\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(lk)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        for lk in (dead_lock, live_lock, unfinished)
    ]
    try:
        for pr in procs:
            assert pr.stdout.readline().strip() == "held"
        for pr in (procs[0], procs[2]):
            pr.kill()
            pr.wait()
        assert Claim(dead_lock).generations() == [0] and Claim(live_lock).generations() == [0]
        assert Claim(dead_lock).clear_dead() == 1 and Claim(dead_lock).generations() == []
        assert Claim(live_lock).clear_dead() == 0 and Claim(live_lock).generations() == [0]
        # a whole folder in one listing, only the claims of finished work: the unfinished one's dead
        # claim is left for the next worker's takeover (a new generation)
        (tmp_path / ".dead.lock.0").write_text(f"{atomic.HOST} x 1 y")  # dead again (stale below)
        old = time.time() - 3600
        os.utime(tmp_path / ".dead.lock.0", (old, old))
        assert clear_dead_in(tmp_path, finished=lambda lock: lock != unfinished) == 1
        assert Claim(dead_lock).generations() == [] and Claim(live_lock).generations() == [0]
        assert Claim(unfinished).generations() == [0]
    finally:
        for pr in procs:
            pr.kill()
            pr.wait()
