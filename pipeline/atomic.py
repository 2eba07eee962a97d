"""Write outputs under a temporary name and rename them when complete.

Nothing half-written ever sits under a final name: a crash leaves only
``*.partial-<host>@<pidns>-<pid>`` files or folders, which a rerun removes and redoes. Many workers
(cluster array tasks, on one host or several sharing the folder, containers sharing the host's name)
may write the same file at once: each writes its own partial, and only partials of ended processes
of this host and PID namespace (or, from other hosts or namespaces, older than a day) are removed.

A folder is published by exchanging it with the old one in one step (Linux ``renameat2`` with
``RENAME_EXCHANGE``), then removing the old one: readers always find a whole folder, and workers
replacing the same folder at once never fail (the last exchange wins). Where the file system cannot
exchange (some network file systems), the old folder is renamed aside first, and a rename that finds
the folder already there again means that another worker published it: that worker wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Iterator

PARTIAL = ".partial"
HOST = socket.gethostname()
#: A partial of another host older than this (seconds) is a leftover, not a write in progress.
OTHER_HOST_STALE_S = 86400.0


def pid_namespace() -> str:
    """This process's PID namespace as a number (the inode of ``/proc/self/ns/pid``), or '-'.

    Containers started with ``--network host`` share the host's name but not its PIDs: a PID says
    whether a writer lives only where the namespace is the same."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return "-"
    digits = "".join(c for c in link if c.isdigit())
    return digits or "-"


PIDNS = pid_namespace()


def partial_name(final: Path) -> Path:
    """Temporary sibling of ``final`` unique to this process (``<name>.partial-<host>@<pidns>-<pid>``)."""
    return final.with_name(f"{final.name}{PARTIAL}-{HOST}@{PIDNS}-{os.getpid()}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists in this PID namespace (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_stale(partial: Path, final: Path) -> bool:
    """Whether ``partial`` was left by a write that ended: this process's own, one of an ended
    process of this host and PID namespace, or one of another host or namespace older than a day
    (unknowable otherwise)."""
    host, _, pid = partial.name[len(final.name) + len(PARTIAL) + 1 :].rpartition("-")
    if not pid.isdigit():
        return True
    host, at, ns = host.rpartition("@") if "@" in host else (host, "", "")
    # older forms: <name>.partial-<pid> and <name>.partial-<host>-<pid>, both of this namespace
    same_ns = not at or (ns == PIDNS != "-")
    if host in ("", HOST) and same_ns:
        return int(pid) == os.getpid() or not pid_alive(int(pid))
    try:
        return time.time() - partial.lstat().st_mtime > OTHER_HOST_STALE_S
    except FileNotFoundError:
        return False


def remove_stale_partials(final: Path) -> None:
    """Delete leftovers of interrupted writes of ``final``, never another live writer's partial."""
    for p in final.parent.glob(f"{glob.escape(final.name)}{PARTIAL}-*"):
        if not _is_stale(p, final):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
except (AttributeError, OSError):  # not glibc >= 2.28
    _renameat2 = None


def exchange(a: Path, b: Path) -> bool | None:
    """Swap the paths ``a`` and ``b`` in one step (both must exist); True when swapped, False when
    one of them does not exist, None when this system or file system cannot exchange."""
    if _renameat2 is None:
        return None
    rc = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.ENOENT:
        return False
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return None
    raise OSError(err, os.strerror(err), str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def publish_dir(tmp: Path, final: Path) -> None:
    """Put the folder ``tmp`` at ``final``, replacing whatever is there (see the module docstring)."""
    for _ in range(1000):
        swapped = exchange(tmp, final)
        if swapped:  # tmp now holds the old folder (or file, or link)
            _remove(tmp)
            return
        aside = None
        if swapped is None and (final.exists() or final.is_symlink()):
            aside = partial_name(final.with_name(final.name + ".old"))
            with contextlib.suppress(FileNotFoundError):
                os.rename(final, aside)
        try:
            os.rename(tmp, final)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            if swapped is None:  # another worker published it meanwhile: it wins
                _remove(tmp)
                return
            # published meanwhile: exchange with it on the next turn
        finally:
            if aside is not None:
                _remove(aside)
    raise OSError(errno.EBUSY, "could not publish the folder (replaced by others 1000 times)", str(final))


@contextlib.contextmanager
def atomic_path(final: Path, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``final`` (replacing it), else remove it.

    With ``is_dir`` the temporary path does not exist yet (tools such as convert_imageset create
    it); the caller creates files or folders at it. A folder is published with :func:`publish_dir`
    (any path the caller made a folder at is).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    remove_stale_partials(final.with_name(final.name + ".old"))
    tmp = partial_name(final)
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            publish_dir(tmp, final)
        else:
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
