"""Where a data set's images and masks sit in a folder: declared layouts, found and presented.

A :class:`Layout` names files with small path templates relative to the data set's root folder:
``{field}`` stands for one or more characters other than ``/`` (the shortest that fits), and
``{field:REGEX}`` for a regular expression. An image and its mask share the values of their fields,
e.g. epi.tgz as published::

    Layout("as published", images="{patient}_{n}.tif", masks="masks/{patient}_{n}_mask.png")

and the same data laid out as the original MATLAB expected (masks beside the images)::

    Layout("as the original MATLAB expected", images="{patient}_{n}.tif", masks="{patient}_{n}_mask.png")

:func:`find` looks for every declared layout at the top folder and up to ``max_depth`` folders
below, and keeps the root and layout that pair the most images with masks; when none matches its
error lists what it looked for. :func:`present` gives a folder in the layout a use case's code
reads: the root itself, or a folder of links in that layout.

Use cases declare layouts (``pipeline/usecases/datasets.py``); this module knows none by name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

from pipeline import atomic

log = logging.getLogger(__name__)

_FIELD = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


@dataclass(frozen=True)
class Layout:
    """One way a data set's files can be laid out below its root folder.

    ``images`` and ``masks`` are path templates (see the module docstring); ``masks`` is None when
    the labels are in the path instead (IDC: ``{patient}/{label:[01]}/{name}.png``). A file that
    matches the mask template is never taken for an image. ``patient`` names the field holding
    the patient ID (None: each image is its own patient). ``mask_band`` names the band of the mask
    that holds the annotation ("A": the alpha channel); None means the mask as read (first band).
    """

    name: str
    images: str
    masks: str | None = None
    patient: str | None = None
    mask_band: str | None = None

    def describe(self) -> str:
        """One line: the name and the templates."""
        return f"{self.name}: images {self.images}" + (f" with masks {self.masks}" if self.masks else "")


def template_regex(template: str) -> re.Pattern:
    """The compiled, anchored regular expression of a path template."""
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{m.group(2) or '[^/]+?'})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$")


def render(template: str, fields: dict[str, str]) -> str:
    """The path a template names for the given field values."""
    return _FIELD.sub(lambda m: fields[m.group(1)], template)


def list_files(top: Path, max_depth: int) -> list[str]:
    """Relative POSIX paths of the files below ``top``, at most ``max_depth`` folders down, sorted.

    Hidden files and folders (names starting with ".") are left out; symbolic links are followed
    only when they point at files.
    """
    top = Path(top)
    out: list[str] = []

    def walk(d: Path, rel: str, depth: int) -> None:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith("."):
                continue
            r = f"{rel}{e.name}"
            if e.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    walk(Path(e.path), r + "/", depth + 1)
            elif e.is_file():
                out.append(r)

    walk(top, "", 0)
    return out


@dataclass
class Match:
    """A layout found at a root folder: its images and masks, keyed by their field values."""

    root: Path
    layout: Layout
    images: dict[tuple, Path] = field(default_factory=dict)
    masks: dict[tuple, Path] = field(default_factory=dict)
    fields: dict[tuple, dict[str, str]] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        """Images with a mask (every image when the layout has no masks)."""
        if self.layout.masks is None:
            return len(self.images)
        return sum(1 for k in self.images if k in self.masks)

    def images_without_masks(self) -> list[Path]:
        return [] if self.layout.masks is None else [p for k, p in self.images.items() if k not in self.masks]

    def masks_without_images(self) -> list[Path]:
        return [p for k, p in self.masks.items() if k not in self.images]

    def patient(self, key: tuple) -> str:
        """The patient ID of an image (its layout's patient field, else the image's relative path)."""
        f = self.fields[key]
        return f[self.layout.patient] if self.layout.patient else "/".join(f.values())

    def patients(self) -> list[str]:
        return sorted({self.patient(k) for k in self.images})


def _candidates(files: list[str], layout: Layout, max_depth: int) -> dict[str, Match]:
    """Matches of ``layout`` at every root (a relative folder, "" for the top) holding its files."""
    img_re = template_regex(layout.images)
    mask_re = template_regex(layout.masks) if layout.masks else None
    img_depth = layout.images.count("/") + 1
    mask_depth = layout.masks.count("/") + 1 if layout.masks else 0
    out: dict[str, Match] = {}
    for rel in files:
        parts = rel.split("/")
        for depth, rx, kind in ((mask_depth, mask_re, "mask"), (img_depth, img_re, "image")):
            if rx is None or len(parts) < depth or len(parts) - depth > max_depth:
                continue
            root, tail = "/".join(parts[:-depth]), "/".join(parts[-depth:])
            m = rx.match(tail)
            if not m:
                continue
            match = out.setdefault(root, Match(Path(root), layout))
            key = tuple(sorted(m.groupdict().items()))
            if kind == "mask":
                match.masks[key] = Path(rel)
                break  # a mask is never an image
            match.images[key] = Path(rel)
            match.fields[key] = m.groupdict()
    return out


class LayoutNotFound(FileNotFoundError):
    """No declared layout pairs any image with a mask; the message says what was looked for."""


def find(top: Path, layouts: Sequence[Layout], max_depth: int = 3, what: str = "data") -> Match:
    """The root folder and layout (among ``layouts``) pairing the most images with masks.

    Roots are ``top`` and the folders up to ``max_depth`` below it; ties go to the shallower root,
    then to the earlier layout. Raises :class:`LayoutNotFound` naming ``top``, each layout looked
    for, the best partial match and the kinds of files present.
    """
    top = Path(top)
    if not layouts:
        raise ValueError(
            f"{top}: no layouts declared for {what} (declare them with its Archive, pipeline/usecases/datasets.py)"
        )
    files = list_files(top, max_depth + max(t.count("/") for lay in layouts for t in (lay.images, lay.masks or "")))
    best: Match | None = None
    best_rank: tuple = ()
    partial: Match | None = None
    for order, lay in enumerate(layouts):
        for root, m in _candidates(files, lay, max_depth).items():
            rank = (m.pairs, -(root.count("/") + 1 if root else 0), -order)
            if m.pairs and rank > best_rank:
                best, best_rank = m, rank
            if not m.pairs and m.images and (partial is None or len(m.images) > len(partial.images)):
                partial = m
    if best is not None:
        best.root = top / best.root
        best.images = {k: top / p for k, p in best.images.items()}
        best.masks = {k: top / p for k, p in best.masks.items()}
        log.info(
            "%s: %s at %s (%d images%s)",
            what,
            best.layout.name,
            best.root,
            len(best.images),
            f", {best.pairs} with masks" if best.layout.masks else "",
        )
        return best
    lines = [f"{top}: no {what} found in any accepted layout (looked at the top and up to {max_depth} folders down):"]
    lines += [f"  - {lay.describe()}" for lay in layouts]
    if partial is not None:
        example = render(partial.layout.masks or "", next(iter(partial.fields.values())))
        lines.append(
            f"  closest: {len(partial.images)} images of '{partial.layout.name}' in {top / partial.root}, "
            f"none with its mask (e.g. {example})"
        )
    kinds = Counter(PurePosixPath(f).suffix.lower() or "(no extension)" for f in files)
    lines.append(
        "  found: "
        + (", ".join(f"{n} {ext}" for ext, n in kinds.most_common(6)) if files else "no files")
        + (f" in {len(files)} files" if files else "")
    )
    raise LayoutNotFound("\n".join(lines))


def present(match: Match, reads: Sequence[Layout], cache: Path) -> Path:
    """A folder in a layout the code reads: ``match.root`` when its layout is one of ``reads`` (or
    ``reads`` is empty), else a folder of symbolic links under ``cache`` in the layout ``reads[0]``.

    The link folder is ``<root name>-as-read-<hash of the root's path>`` (two sources never share
    one). It is left alone when it already holds exactly the links this match needs (cluster tasks
    starting together all call this); otherwise it is built under a temporary name and published in
    one step (:func:`pipeline.atomic.publish_dir`).
    """
    if not reads or match.layout in reads:
        return match.root
    target = reads[0]
    src = Path(match.root).resolve()
    tag = hashlib.sha1(str(src).encode()).hexdigest()[:8]
    view = Path(cache) / f"{src.name}-as-read-{tag}"
    links: dict[str, str] = {}
    for key, img in match.images.items():
        f = match.fields[key]
        links[render(target.images, f)] = str(Path(img).resolve())
        if key in match.masks and target.masks:
            links[render(target.masks, f)] = str(Path(match.masks[key]).resolve())
    if _links_in(view) == links:
        log.debug("%s: already presented in %s", src, view)
        return view
    with atomic.atomic_path(view, is_dir=True) as tmp:
        tmp.mkdir(parents=True)
        for rel, dest in links.items():
            _link(Path(dest), tmp / rel)
    log.info(
        "%s: presented %s (%s) as '%s' in %s (links)", src, match.layout.name, len(match.images), target.name, view
    )
    return view


def _links_in(folder: Path) -> dict[str, str] | None:
    """{relative path: link target} of the symbolic links under ``folder``; None when it is not a
    folder or holds anything but links and folders."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                return None
            out[os.path.relpath(full, folder).replace(os.sep, "/")] = os.readlink(full)
    return out


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(src)
