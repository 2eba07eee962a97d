"""Claims on pieces of work shared by many workers (step-5 images; later slide tiles, array tasks)."""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Claim:
    """An exclusive claim on a piece of work (one output image, say) shared by many workers.

    The lock file is created with O_CREAT|O_EXCL, so only one worker gets it. A lock older than
    ``stale_after`` seconds (its worker died), or naming a process of this host and this process
    namespace that no longer exists, is taken over (containers sharing a host name, as with
    ``--network host``, have their own process namespaces: their claims wait for ``stale_after``).
    Release on success with :meth:`release`.
    """

    def __init__(self, lock: Path, stale_after: float = 3600.0):
        self.lock = Path(lock)
        self.stale_after = stale_after
        self.held = False

    def acquire(self) -> bool:
        """Try to take the claim; True when this worker now holds it."""
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    age = time.time() - self.lock.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > self.stale_after or self._owner_died():
                    self.lock.unlink(missing_ok=True)
                    continue
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{socket.gethostname()} {os.getpid()} {time.time():.0f} {_pid_namespace()}\n")
            self.held = True
            return True
        return False

    def _owner_died(self) -> bool:
        """The lock names this host, this process namespace and a process that no longer exists (a killed worker)."""
        try:
            host, pid, _, ns = self.lock.read_text().split()
            if host != socket.gethostname() or ns != _pid_namespace():
                return False
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError):         # unreadable, half-written, older format, another user's live process
            return False
        return False

    def release(self) -> None:
        """Remove the lock file if this worker holds it."""
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False


def _pid_namespace() -> str:
    """This process's PID namespace (``pid:[4026531836]``), or '-' where /proc does not say."""
    try:
        return os.readlink("/proc/self/ns/pid").replace(" ", "")
    except OSError:
        return "-"


@contextmanager
def claimed(lock: Path, done: bool = False) -> Iterator[bool]:
    """Claim one piece of work for the block: True when it is not ``done`` and this worker now
    holds its lock, False when it is finished or another worker holds it (skip it then). The
    claim is released when the block ends, also when it raises."""
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
