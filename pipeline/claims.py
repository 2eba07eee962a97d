"""Claims on pieces of work shared by many workers (step-5 images; later slide tiles, array tasks).

A claim on a piece of work named ``<lock>`` is a file ``<lock>.<generation>``. The worker holding
the highest generation owns the work. Every file is made with O_CREAT|O_EXCL, so creating a given
generation can succeed for one worker only: the first claim is generation 0, and taking over a
dead worker's claim (generation g) means creating generation g+1. Two workers that both judge g
dead both try to create g+1 and exactly one succeeds; nothing is ever unlinked by path while
another worker may still hold it, so the takeover cannot race.

The owner refreshes its file's mtime (the heartbeat) from a thread every ``heartbeat`` seconds,
and :meth:`Claim.beat` lets the work loop refresh it too (pycaffe holds the GIL during a forward,
which can delay the thread). A claim is dead when its heartbeat is older than ``misses`` missed
beats, or, at once, when it was made on this host in this PID namespace by a process that no
longer exists (a worker killed with SIGKILL, or a crash). A worker that was judged dead but is
still running finds the higher generation at its next beat (or at :meth:`Claim.still_held`,
which callers check before writing results) and drops its work.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import atomic

log = logging.getLogger(__name__)

#: A claim file: ``<lock>.<generation>`` (locks are named ``.<work>.lock``).
_CLAIM_FILE = re.compile(r"(.+\.lock)\.(\d+)")

#: Seconds between heartbeats of a held claim.
HEARTBEAT = 30.0
#: Missed heartbeats after which a claim is considered dead (its worker hung or died elsewhere).
MISSES = 5


def _pidns() -> str:
    """This process's PID namespace (``pid:[4026531836]``; atomic's number in that form), or '-'."""
    return "-" if atomic.PIDNS == "-" else f"pid:[{atomic.PIDNS}]"


def _token() -> str:
    """What a claim file holds: host, PID namespace, PID and a unique id of this claim."""
    return f"{socket.gethostname()} {_pidns()} {os.getpid()} {uuid.uuid4().hex}"


class Claim:
    """An exclusive claim on a piece of work (one output image, say) shared by many workers.

    ``lock`` is the base name of the claim files (``<lock>.0``, ``<lock>.1``, ...). Use
    :meth:`acquire` (True when this worker now owns the work), :meth:`still_held` before writing
    results, and :meth:`release` when done (or as a context manager after a successful acquire).
    """

    def __init__(self, lock: Path, heartbeat: float = HEARTBEAT, misses: int = MISSES):
        self.lock = Path(lock)
        self.heartbeat = float(heartbeat)
        self.stale_after = self.heartbeat * misses
        self.held = False
        self.lost = False
        self.generation: int | None = None
        self._token = ""
        self._last_beat = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ claim files
    @property
    def path(self) -> Path | None:
        """The claim file this worker holds (None when it holds none)."""
        return self._path(self.generation) if self.held and self.generation is not None else None

    def _path(self, generation: int) -> Path:
        return self.lock.with_name(f"{self.lock.name}.{generation}")

    def generations(self) -> list[int]:
        """Generations of the claim files now present, ascending."""
        prefix = self.lock.name + "."
        out = []
        try:
            names = os.listdir(self.lock.parent)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                out.append(int(name[len(prefix) :]))
        return sorted(out)

    def _alive(self, generation: int) -> bool | None:
        """Whether the owner of ``generation`` looks alive; None when the file is gone."""
        path = self._path(generation)
        try:
            age = time.time() - path.stat().st_mtime
            text = path.read_text()
        except FileNotFoundError:
            return None
        fields = text.split()
        if (
            len(fields) >= 3
            and fields[0] == socket.gethostname()
            and fields[1] == _pidns() != "-"
            and fields[2].isdigit()
            and not atomic.pid_alive(int(fields[2]))
        ):
            return False
        # a file just created and not yet written is young, hence alive
        return age <= self.stale_after

    def clear_dead(self) -> int:
        """Remove the claim files of owners that are dead (or silent for longer than ``stale_after``);
        return how many. For work found finished: a worker killed between writing its result and
        releasing its claim leaves the file, which nobody would otherwise take over."""
        removed = 0
        for generation in self.generations():
            if self._alive(generation) is False:
                self._path(generation).unlink(missing_ok=True)
                removed += 1
        return removed

    # ------------------------------------------------------------------ the protocol
    def acquire(self) -> bool:
        """Try to take the claim; True when this worker now owns the work.

        False when a live worker owns it. A dead owner's claim is taken over by creating the next
        generation; after creating it, the worker checks that no higher generation appeared.
        """
        if self.held:
            return True
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            gens = self.generations()
            target = 0
            if gens:
                alive = self._alive(gens[-1])
                if alive is None:  # released meanwhile: look again
                    continue
                if alive:
                    return False
                target = gens[-1] + 1
                log.info("taking over the dead claim %s", self._path(gens[-1]))
            token = _token()
            try:
                fd = os.open(self._path(target), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:  # another worker made this generation first
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")
            if any(g > target for g in self.generations()):
                # a worker that judged our (new, still empty) file dead overtook us: it owns the work
                self._path(target).unlink(missing_ok=True)
                return False
            for g in gens:  # the dead generations below ours
                self._path(g).unlink(missing_ok=True)
            self.generation, self._token, self.held, self.lost = target, token, True, False
            self._last_beat = time.monotonic()
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat_loop, name=f"heartbeat {self.lock.name}", daemon=True)
            self._thread.start()
            return True
        return False

    def still_held(self) -> bool:
        """True while this worker owns the claim: its file is there, unchanged, and no worker took
        it over (a higher generation). Check before writing results."""
        if not self.held or self.lost:
            return False
        assert self.generation is not None
        try:
            mine = self._path(self.generation).read_text().strip() == self._token
        except FileNotFoundError:
            mine = False
        if not mine or any(g > self.generation for g in self.generations()):
            self.lost = True
            log.warning("claim %s was taken over by another worker", self._path(self.generation))
        return not self.lost

    def beat(self, force: bool = False) -> bool:
        """Refresh the heartbeat when one is due (or ``force``); False when the claim was lost."""
        if not self.held:
            return False
        if not force and time.monotonic() - self._last_beat < self.heartbeat:
            return not self.lost
        if not self.still_held():
            return False
        assert self.generation is not None
        try:
            os.utime(self._path(self.generation))
        except FileNotFoundError:
            self.lost = True
            return False
        self._last_beat = time.monotonic()
        return True

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if not self.beat(force=True):
                return

    def release(self) -> None:
        """Stop the heartbeat and remove this worker's claim file (if it still owns it)."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self.still_held():
            assert self.generation is not None
            self._path(self.generation).unlink(missing_ok=True)
        self.held = False
        self._thread = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def clear_dead_in(folder: Path, finished: Callable[[Path], bool]) -> int:
    """:meth:`Claim.clear_dead` for every claim in ``folder`` (one listing) whose work is
    ``finished(lock)``; return how many claim files were removed. Only for finished work: an
    unfinished one's dead claim is taken over by the next generation, which removing it would race."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    locks = {Path(folder) / m.group(1) for m in map(_CLAIM_FILE.fullmatch, names) if m}
    return sum(Claim(lock).clear_dead() for lock in sorted(locks) if finished(lock))


@contextmanager
def claimed(lock: Path, done: bool = False) -> Iterator[bool]:
    """Claim one piece of work for the block: True when it is not ``done`` and this worker now
    holds its claim, False when it is finished or another worker holds it (skip it then). The
    claim is released when the block ends, also when it raises. (Step 5 uses :class:`Claim`
    itself, to beat between chunks and re-check before writing.)"""
    if done:
        yield False
        return
    claim = Claim(lock)
    if not claim.acquire():
        yield False
        return
    try:
        yield True
    finally:
        claim.release()
