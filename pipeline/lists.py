"""Patch list files: "<file name><separator><class>" per line.

The IDC MATLAB script (use case 6) and the common step 2 wrote a TAB between name and class.
BVLC Caffe's convert_imageset (at the pinned commit) splits each line at its LAST SPACE, so a
TAB-separated list makes every line fail and yields an empty database. The faithful TAB files are
kept as written; :func:`space_copy` makes the copy that convert_imageset reads, and
:func:`check_for_convert_imageset` refuses a list it would silently turn into an empty DB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from pipeline import atomic


class BadList(ValueError):
    """A list file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    """One list line: a patch file name (relative to the patch folder) and its class."""

    name: str
    label: int


def format_lines(entries: Iterable[Entry], sep: str = "\t") -> str:
    """List text with ``sep`` between name and class, one entry a line, final newline."""
    return "".join(f"{e.name}{sep}{e.label}\n" for e in entries)


def write_list(path: Path, entries: Iterable[Entry], sep: str = "\t") -> int:
    """Atomically write a list; returns the number of lines."""
    entries = list(entries)
    atomic.write_text(Path(path), format_lines(entries, sep))
    return len(entries)


def read_list(path: Path) -> list[Entry]:
    """Read a list separated by TAB or space (the class is the last field).

    Raises :class:`BadList` naming the file and line for a line without a class.
    """
    out: list[Entry] = []
    for i, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        stripped = line.rstrip("\r\n")
        cut = max(stripped.rfind("\t"), stripped.rfind(" "))
        if cut <= 0:
            raise BadList(f"{path}:{i}: expected '<file name><TAB or space><class>', got {line!r}")
        name, label = stripped[:cut].rstrip("\t "), stripped[cut + 1 :]
        try:
            out.append(Entry(name, int(label)))
        except ValueError:
            raise BadList(f"{path}:{i}: class {label!r} is not an integer") from None
    return out


def space_copy(src: Path, dst: Path) -> int:
    """Write the space-separated copy of a (TAB-separated) list for convert_imageset."""
    entries = read_list(src)
    for e in entries:
        if " " in e.name or "\t" in e.name:
            raise BadList(f"{src}: file name {e.name!r} contains whitespace; convert_imageset cannot read it")
    return write_list(dst, entries, sep=" ")


def check_for_convert_imageset(list_path: Path, root: Path | None = None) -> list[Entry]:
    """Refuse a list that convert_imageset would turn into an empty or partial database.

    Checks: not empty; every line "<name> <int>" split at the last space with no TAB (a TAB makes
    Caffe look for a file named "<name>\\t<class>"); and, when ``root`` is given, every file exists.
    Returns the entries.
    """
    list_path = Path(list_path)
    if not list_path.is_file():
        raise BadList(f"{list_path}: list file does not exist")
    lines = list_path.read_text().splitlines()
    if not any(line.strip() for line in lines):
        raise BadList(f"{list_path}: list is empty; convert_imageset would write an empty database")
    for i, line in enumerate(lines, start=1):
        if "\t" in line:
            raise BadList(
                f"{list_path}:{i}: TAB-separated line {line!r}; convert_imageset splits at the last "
                "space and would skip every line (empty DB). Use the space-separated copy "
                "(pipeline.lists.space_copy / `python -m pipeline lists`)."
            )
    entries = read_list(list_path)
    if root is not None:
        missing = [e.name for e in entries if not (Path(root) / e.name).is_file()]
        if missing:
            raise BadList(f"{list_path}: {len(missing)} listed file(s) do not exist under {root}, e.g. {missing[:3]}")
    return entries


def write_names(path: Path, names: Sequence[str]) -> None:
    """Atomically write one name a line (patient lists)."""
    atomic.write_text(Path(path), "".join(f"{n}\n" for n in names))


def read_names(path: Path) -> list[str]:
    """Read one name a line, skipping blank lines and surrounding whitespace."""
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
