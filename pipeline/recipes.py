"""Stage recipes: every artefact records what made it, so a rerun never reuses stale work.

Each stage of a run records, beside its outputs, the recipe that made them: the options that
change them and the recipes of its inputs (in the spirit of Snakemake's params tracking and DVC's
stage lock files), in ``<folder>/<stage>[_<key>].recipe.json``::

    {"stage": "dbs", "key": "1", "label": "dbs (fold 1)",
     "options": {"seed": 1, "caffe_shuffle": false},
     "inputs": {"folds": {...the recipe of the folds stage, recursively...}},
     "hash": "...", "made": "20261123T170412-3fa9c1", "state": "started" | "done",
     "outputs": ["DB_train_1", ...], "byproducts": ["DB_train_1.*", ...]}

``hash`` covers the stage, its key, its options and, for each input, the input's hash and ``made``
id (a new one each time a stage computes from scratch): an input made again, even with the same
options, changes the recipe of every stage after it.

:func:`stage` is the one call per stage. With the recipe it expects:

- recorded as done with the same hash, outputs present: **skipped**;
- recorded as started with the same hash (an interrupted run): ``make`` runs again over what is
  there, so interrupted work resumes (training from its newest solverstate, step 5 skipping
  finished images);
- nothing recorded and no output present: ``make`` runs;
- recorded with another hash, or outputs present without a record: **refused** with
  :class:`StaleRecipe` (one line: the option that changed, old and new value, what to do), unless
  ``force``: then the old outputs are removed and ``make`` runs from scratch; the stage's new
  ``made`` id changes the recipe of every stage after it, which are recomputed too (``force``) or
  refused (no ``force``). Stages whose recipe did not change are skipped even with ``force``.

A stage the run does not ask for (``run=False``) is only checked, as the input of later stages: done
with the expected recipe, else :class:`MissingInput` (names the artefact and the stage that makes
it) or :class:`StaleRecipe`.

Options are plain JSON values (dataclasses, paths and tuples are converted); name them as the
command line does (``iter``, ``seed``, ``variant``...) so the messages point at the option to change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping, Sequence

from pipeline import atomic
from pipeline.download import sha256_of

log = logging.getLogger(__name__)

RECORD_SUFFIX = ".recipe.json"
#: What a refusal tells the user to do (the command line's and make's spelling).
FORCE_HINT = "--force (make: FORCE=1)"
NEW_WORK_HINT = "a new --work folder (make: WORK=...)"

#: A recipe as stages after it see it: {"stage", "key", "label", "options", "inputs", "hash", "made", "time"}.
Recipe = dict


class RecipeError(ValueError):
    """A stage cannot run or be used as it stands; the message is one line saying what to do."""


class StaleRecipe(RecipeError):
    """Outputs made with another recipe (an option changed) or with no recipe record."""


class MissingInput(RecipeError):
    """An input that a stage needs was not made (or not finished, or removed)."""


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses as dicts, paths as strings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"recipe option of type {type(value).__name__} is not JSON data: {value!r}")


def digest(value: Any, n: int = 16) -> str:
    """First ``n`` hex digits of the sha256 of ``value``'s canonical JSON."""
    text = json.dumps(plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _hash(stage: str, key: str, options: dict, inputs: Mapping[str, Recipe]) -> str:
    return digest(
        {
            "stage": stage,
            "key": key,
            "options": options,
            "inputs": {name: [r["hash"], r.get("made", "")] for name, r in inputs.items()},
        }
    )


def _file_sha256(path: Path, memo: Path | None) -> str:
    """sha256 of a file, remembered in ``memo/<name>.sha256.json`` by its size, modification time and
    inode (an archive of GBs is hashed once, not by every run and cluster task)."""
    st = path.stat()
    ident = {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    record = Path(memo) / f"{path.name}.sha256.json" if memo else None
    if record is not None:
        try:
            old = json.loads(record.read_text())
            if {k: old.get(k) for k in ident} == ident and isinstance(old.get("sha256"), str):
                return old["sha256"]
        except (OSError, ValueError):
            pass
    digest_ = sha256_of(path)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(record, json.dumps({**ident, "sha256": digest_}))
    return digest_


def _folder_listing(folder: Path, skip: Path | None = None) -> str:
    """``listing <hash> (<n> files)``: the hash of every file's relative path, size and modification
    time under ``folder`` (links followed, each real folder once; ``skip``, a run's work folder
    inside it, left out)."""
    lines, seen = [], set()
    if skip is not None:
        seen.add(os.path.realpath(skip))
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in seen]
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:  # a dangling link
                continue
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            lines.append(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n")
    h = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()[:16]
    return f"listing {h} ({len(lines)} files)"


def content_identity(path: Path, memo: Path | None = None) -> str:
    """What the data at ``path`` is, by content: ``sha256 <hex>`` of a file (an archive), or a folder's
    ``listing <hash> (<n> files)`` of names, sizes and modification times; "" when it is absent.
    ``memo``: the run's ``WORK/data`` (archives' sha256 remembered there; WORK is left out of a listing)."""
    path = Path(path)
    if path.is_file():
        return "sha256 " + _file_sha256(path.resolve(), memo)
    if path.is_dir():
        return _folder_listing(path, skip=Path(memo).parent if memo else None)
    return ""


def source(path: Path, memo: Path | None = None, by_content: bool = True, **options: Any) -> Recipe:
    """The recipe of an external input (a data folder or archive the user names): its resolved path,
    its content (:func:`content_identity`, unless ``options`` give its ``sha256``, or ``by_content``
    is False because ``options`` identify the files that matter by content already) and ``options``.
    It is made by no stage; another path, or other data at the same path, is another recipe.
    ``memo``: a folder remembering archives' sha256 (see :func:`_file_sha256`)."""
    content = {} if "sha256" in options or not by_content else {"content": content_identity(path, memo)}
    opts = plain({"path": str(Path(path).resolve()), **content, **options})
    return {
        "stage": "data",
        "key": "",
        "label": "data",
        "options": opts,
        "inputs": {},
        "hash": _hash("data", "", opts, {}),
        "made": "",
        "time": "",
    }


# --------------------------------------------------------------------------- differences


@dataclass(frozen=True)
class Change:
    """One difference between a recorded recipe and the expected one."""

    option: str  # option name, "" when an input was made again or is new
    old: Any
    new: Any
    via: tuple[str, ...] = ()  # labels of the inputs it sits in, nearest first


def differences(old: Recipe, new: Recipe, via: tuple[str, ...] = ()) -> list[Change]:
    """What differs between two recipes: own options first, then inside the inputs (recursively).

    An input with the same hash but another ``made`` id gives a Change with ``option == ""``.
    """
    out: list[Change] = []
    oo, no = old.get("options", {}), new.get("options", {})
    for k in list(no) + [k for k in oo if k not in no]:
        if oo.get(k) != no.get(k):
            out.append(Change(k, oo.get(k), no.get(k), via))
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for name in list(ni) + [n for n in oi if n not in ni]:
        a, b = oi.get(name), ni.get(name)
        if a is None or b is None:
            out.append(Change(f"input {name}", a and a.get("label"), b and b.get("label"), via))
        elif a.get("hash") != b.get("hash"):
            out += differences(a, b, via + (b.get("label") or name,))
        elif a.get("made") != b.get("made"):
            out.append(Change("", a.get("time"), b.get("time"), via + (b.get("label") or name,)))
    return out


def _show(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(change: Change) -> str:
    """A change in words: ``seed=1, this run asks seed=2 (in its input folds)``."""
    where = f" (in its input {' <- '.join(change.via)})" if change.via else ""
    if not change.option:
        return f"an input that has been made again since: {change.via[-1]} (made {change.new})"
    if change.option.startswith("input "):
        return f"{change.option} = {_show(change.old)}, this run has {_show(change.new)}{where}"
    return f"{change.option}={_show(change.old)}, this run asks {change.option}={_show(change.new)}{where}"


# --------------------------------------------------------------------------- the stage call


def record_path(folder: Path, name: str, key: str = "") -> Path:
    """Where stage ``name`` (of ``key``, e.g. a fold) records its recipe."""
    return Path(folder) / f"{name}{'_' + key if key else ''}{RECORD_SUFFIX}"


def read_record(path: Path) -> dict | None:
    """A recipe record, or None when absent or unreadable."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and "hash" in rec else None


def _checked_relative(pattern: str) -> str:
    p = PurePosixPath(pattern)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"recipe output {pattern!r} must be a relative path inside the stage's folder")
    return str(p)


@dataclass
class Step:
    """One stage (of one fold, level...) and the recipe it expects. See the module docstring.

    ``outputs`` (relative to ``folder``) must exist when the stage is done; the first is named in
    messages. ``byproducts`` (relative glob patterns) are other files it writes, removed with the
    outputs before a computation from scratch. ``what`` says in words what the outputs are
    ("the trained model of fold 1").
    """

    name: str
    folder: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Recipe] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    byproducts: Sequence[str] = ()
    make: Callable[[], Any] | None = None
    key: str = ""
    label: str = ""
    what: str = ""
    run: bool = True
    force: bool = False

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.label = self.label or (f"{self.name} ({self.key})" if self.key else self.name)
        self.options = plain(dict(self.options))
        self.outputs = [_checked_relative(p) for p in self.outputs]
        self.byproducts = [_checked_relative(p) for p in self.byproducts]
        self.record = record_path(self.folder, self.name, self.key)

    # ---------------------------------------------------------------- recipe
    def expected(self) -> Recipe:
        """The recipe this run asks for (without ``made``)."""
        inputs = {n: _embedded(r) for n, r in self.inputs.items()}
        return {
            "stage": self.name,
            "key": self.key,
            "label": self.label,
            "options": self.options,
            "inputs": inputs,
            "hash": _hash(self.name, self.key, self.options, inputs),
        }

    def _first_output(self) -> Path:
        return self.folder / self.outputs[0] if self.outputs else self.record

    def _missing_outputs(self) -> list[Path]:
        return [self.folder / p for p in self.outputs if not (self.folder / p).exists()]

    def _existing(self, rec: dict | None = None) -> list[Path]:
        pats = list(self.outputs) + list(self.byproducts)
        if rec:
            pats += [_checked_relative(p) for p in rec.get("outputs", []) + rec.get("byproducts", [])]
        found: list[Path] = []
        for pat in dict.fromkeys(pats):
            paths = self.folder.glob(pat) if any(ch in pat for ch in "*?[") else [self.folder / pat]
            found += [p for p in paths if (p.exists() or p.is_symlink()) and not p.name.endswith(RECORD_SUFFIX)]
        return list(dict.fromkeys(found))

    # ---------------------------------------------------------------- decision
    def decide(self) -> str:
        """ "skip", "resume" or "fresh"; raises :class:`StaleRecipe` or :class:`MissingInput`."""
        old = read_record(self.record)
        new = self.expected()
        if not self.run:
            return self._check_input(old, new)
        if old is None:
            existing = self._existing()
            if not existing or self.force:
                return "fresh"
            raise StaleRecipe(self._stale(self._unrecorded(existing[0])))
        if old["hash"] == new["hash"]:
            if old.get("state") == "started":
                return "resume"
            return "skip" if not self._missing_outputs() else "fresh"
        if self.force:
            return "fresh"
        raise StaleRecipe(self._stale(self._changed(old, new)))

    def _check_input(self, old: dict | None, new: Recipe) -> str:
        out = self._first_output()
        what = self.what or f"the output of {self.label}"
        todo = f"the {self.name} stage makes it: run it first (add {self.name} to --stages, or leave --stages out)"
        if old is None:
            existing = self._existing()
            if existing:
                raise StaleRecipe(self._stale(self._unrecorded(existing[0])))
            raise MissingInput(f"missing input: {what} ({out}) not found; {todo}.")
        if old.get("state") != "done":
            raise MissingInput(f"missing input: {what} ({out}) was not finished (interrupted?); {todo}: it resumes.")
        if old["hash"] != new["hash"]:
            raise StaleRecipe(self._stale(self._changed(old, new)))
        missing = self._missing_outputs()
        if missing:
            raise MissingInput(f"missing input: {what} ({missing[0]}) was removed; {todo}.")
        return "skip"

    def _unrecorded(self, path: Path) -> str:
        return (
            f"{path} exists but has no recipe record {self.record.name} (made by an earlier version of the "
            "pipeline, or by hand)"
        )

    def _changed(self, old: dict, new: Recipe) -> str:
        changes = differences(old, new)
        if not changes:
            return f"{self._first_output()} was made with another recipe ({self.record.name})"
        text = f"{self._first_output()} was made with {describe(changes[0])}"
        first = changes[0].option or "input made again"
        rest = [o for o in dict.fromkeys(c.option or "input made again" for c in changes[1:]) if o != first]
        return text + (f" (also changed: {', '.join(rest[:4])}{', ...' if len(rest) > 4 else ''})" if rest else "")

    def _stale(self, why: str) -> str:
        todo = (
            f"rerun with {FORCE_HINT} to recompute it and every stage after it"
            if self.run
            else f"add {self.name} to --stages and rerun with {FORCE_HINT} to recompute it and every stage after it"
        )
        return f"{self.label}: {why}; {todo}, or use {NEW_WORK_HINT}."

    # ---------------------------------------------------------------- run
    def ensure(self) -> Recipe:
        """Skip, resume or compute the stage (see :meth:`decide`); returns its recipe for the stages after it."""
        action = self.decide()
        old = read_record(self.record)
        if action == "skip":
            log.log(
                logging.INFO if self.run else logging.DEBUG,
                "%s: already done with this recipe (%s)",
                self.label,
                self.record,
            )
            return _embedded(old)
        if action == "fresh":
            changes = differences(old, self.expected()) if old is not None else []
            if changes:
                log.warning("%s: recomputing (--force): %s", self.label, describe(changes[0]))
            elif old is not None and old["hash"] == self.expected()["hash"]:
                log.info("%s: %s is missing: computing it again", self.label, self._missing_outputs()[0])
            self._clear(old)
            made = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        else:
            log.info("%s: resuming interrupted work (same recipe, %s)", self.label, self.record)
            made = old["made"]
        rec = {
            **self.expected(),
            "made": made,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "state": "started",
            "outputs": list(self.outputs),
            "byproducts": list(self.byproducts),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.record, json.dumps(rec, indent=1))
        if self.make is not None:
            self.make()
        missing = self._missing_outputs()
        if missing:
            raise RuntimeError(f"{self.label}: finished without writing {missing[0]}")
        rec["state"] = "done"
        atomic.write_text(self.record, json.dumps(rec, indent=1))
        return _embedded(rec)

    def _clear(self, old: dict | None) -> None:
        existing = self._existing(old)
        if existing:
            log.info("%s: removing %d old output(s) (%s...)", self.label, len(existing), existing[0])
        for p in existing:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)


def _embedded(rec: Mapping[str, Any]) -> Recipe:
    """The part of a record the stages after it keep in their own recipe."""
    return {k: rec[k] for k in ("stage", "key", "label", "options", "inputs", "hash", "made", "time") if k in rec}


def stage(name: str, folder: Path, **kw: Any) -> Recipe:
    """Run (or skip, resume, refuse, check) one stage: ``Step(name, folder, **kw).ensure()``."""
    return Step(name, folder, **kw).ensure()
