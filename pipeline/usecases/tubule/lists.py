"""Use case 3's patch lists as the Caffe of the time read them.

Three image names hold spaces, so their patch names do too (``m6_10719 T3N2a_anno_1_p_3_0.png``).
BVLC Caffe's convert_imageset splits each line at its last space (from a8cc860, 2016-04-27, and at
the pinned commit): those lines work, the default here. Before, it read ``infile >> filename >>
label``: at the first name with a space the label read fails and the list silently ends there, as
:func:`legacy_parse` reproduces (``legacy_list_parse=True``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline import artefacts, atomic

log = logging.getLogger(__name__)


def legacy_parse(lines: list[str]) -> list[str]:
    """The lines the pre-a8cc860 ``infile >> filename >> label`` loop reads: up to (not including)
    the first line whose name holds whitespace (its label read fails and ends the loop)."""
    kept = []
    for line in lines:
        fields = line.split()
        if len(fields) != 2:
            break
        try:
            int(fields[1])
        except ValueError:
            break
        kept.append(line)
    return kept


def apply_legacy_parse(lists_dir: Path, nfolds: int = 5) -> dict[str, int]:
    """Cut each ``{train,test}_w32_<k>.txt`` where the old convert_imageset stopped; returns the
    number of lines lost per list (a warning line names each list that lost lines)."""
    lost = {}
    for k in range(1, nfolds + 1):
        for side in ("train", "test"):
            path = Path(lists_dir) / artefacts.patch_list(side, k)
            if not path.is_file():
                continue
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = legacy_parse(lines)
            lost[path.name] = len(lines) - len(kept)
            if len(kept) < len(lines):
                log.warning(
                    "%s: the pre-2016-04-27 convert_imageset stops at line %d (%r: a name with a space); "
                    "%d of %d lines dropped (--legacy-list-parse)",
                    path,
                    len(kept) + 1,
                    lines[len(kept)],
                    len(lines) - len(kept),
                    len(lines),
                )
                atomic.write_text(path, "".join(f"{ln}\n" for ln in kept))
    return lost
