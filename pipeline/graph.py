"""The stage graph: every run of every use case is a list of declared stages and one function runs it.

A :class:`Stage` declares what one step of a run is: its name (as ``--stages`` says it), the key
of its fold or level, the folder of its outputs, the options that change them, its inputs (other
stages of the graph, by id, or external recipes such as a data folder's), its outputs and the
function that makes them. A :class:`Graph` holds stages in the order they run (a stage's inputs
come before it). :meth:`Graph.run` runs the stages asked for and checks the stages they need
(their transitive inputs), each through :class:`pipeline.recipes.Step`:

- done with the same recipe: skipped; interrupted with the same recipe: resumed;
- made with other options: refused in one line naming the option, or recomputed with ``force``
  (and so is every stage after it, since its recipe names its inputs' ``made`` ids);
- a stage not asked for is only checked: missing, unfinished or stale, it is named with the stage
  that makes it.

The same graph answers the scheduler's questions (:meth:`Graph.done`): a cluster task is done when
its stages are recorded done, their outputs exist and none is :attr:`Stage.incomplete`.

Fields that depend on what an earlier stage wrote (the images of a fold, known once the folds
exist) are given as functions, called when the stage is reached: ``options``, ``outputs``, an
input's recipe, :attr:`Stage.when` (whether the stage is part of this run at all: a stage whose
``when`` says no is left out, and so are the inputs naming it), :attr:`Stage.incomplete`.

Example (two stages; ``work`` a folder)::

    g = Graph()
    g.add(Stage("patches", work, options={"seed": 1}, inputs={"data": recipes.source(data)},
                outputs=["subs"], make=lambda: sample(data, work / "subs")))
    g.add(Stage("dbs", work, key="1", options={"seed": 1}, inputs={"patches": "patches"},
                outputs=["DB_train_1"], make=lambda: build_db(...)))
    g.run({"dbs"}, force=False)   # checks patches (made before), makes or skips dbs 1
"""

from __future__ import annotations

import itertools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from pipeline import atomic, recipes

log = logging.getLogger(__name__)

#: An input: the id of an earlier stage of the graph, an external recipe, or a function giving one.
Input = str | recipes.Recipe | Callable[[], recipes.Recipe]


def _value(v: Any) -> Any:
    return v() if callable(v) else v


@dataclass
class Stage:
    """One stage of a run (of one fold, level...). See the module docstring.

    ``outputs`` (relative to ``folder``) exist when the stage is done; ``byproducts`` (relative glob
    patterns) are other files it writes, removed with the outputs before it is made from scratch.
    ``what`` names its outputs in words for messages ("the trained model of fold 1").
    """

    name: str
    folder: Path
    make: Callable[[], Any] | None = None
    key: str = ""
    #: unique within the graph; default "<name>" or "<name> <key>"
    id: str = ""
    label: str = ""
    options: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Sequence[str] | Callable[[], Sequence[str]] = ()
    byproducts: Sequence[str] = ()
    what: str = ""
    #: whether the stage is part of this run (called when it is reached); None: always
    when: Callable[[], bool] | None = None
    #: files a stage recorded done should have and lacks (a step-5 image removed, a worker that died):
    #: a run asking for the stage resumes it for them; :meth:`Graph.done` says it is not done
    incomplete: Callable[[], Sequence[Path]] | None = None
    #: called after the stage is made, skipped or checked (work that is not a stage of its own,
    #: such as the GeoJSON beside step-5 maps, which keeps its own freshness)
    after: Callable[[], Any] | None = None
    #: consecutive stages of this name with ``together`` set run that many at a time (trainings), and
    #: all of them are checked before any starts; None: one after the other
    together: int | None = None

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.id = self.id or (f"{self.name} {self.key}" if self.key else self.name)

    @property
    def record(self) -> Path:
        """Its recipe record, ``<folder>/<name>[_<key>].recipe.json``."""
        return recipes.record_path(self.folder, self.name, self.key)


class Graph:
    """Stages in the order they run; see the module docstring."""

    def __init__(self, stages: Iterable[Stage] = ()) -> None:
        self._stages: dict[str, Stage] = {}
        for s in stages:
            self.add(s)

    def add(self, stage: Stage) -> Stage:
        """Append ``stage``; its stage inputs must be in the graph already (ValueError otherwise)."""
        if stage.id in self._stages:
            raise ValueError(f"stage graph: two stages with the id {stage.id!r}")
        for name, ref in stage.inputs.items():
            if isinstance(ref, str) and ref not in self._stages:
                raise ValueError(f"stage {stage.id!r}: input {name!r} names {ref!r}, not an earlier stage")
        self._stages[stage.id] = stage
        return stage

    def __iter__(self) -> Iterator[Stage]:
        return iter(self._stages.values())

    def __contains__(self, stage_id: str) -> bool:
        return stage_id in self._stages

    def __getitem__(self, stage_id: str) -> Stage:
        return self._stages[stage_id]

    def names(self) -> tuple[str, ...]:
        """The stage names, in running order, each once."""
        return tuple(dict.fromkeys(s.name for s in self))

    def of(self, name: str) -> list[Stage]:
        """The stages named ``name`` (one per fold, level...), in order."""
        return [s for s in self if s.name == name]

    def needed(self, asked: Iterable[str]) -> list[Stage]:
        """The stages named in ``asked`` and every stage they take as input, in running order."""
        asked = set(asked)
        need = {s.id for s in self if s.name in asked}
        for s in reversed(list(self)):
            if s.id in need:
                need.update(ref for ref in s.inputs.values() if isinstance(ref, str))
        return [s for s in self if s.id in need]

    # ---------------------------------------------------------------- running
    def run(self, asked: Iterable[str], force: bool = False) -> dict[str, recipes.Recipe]:
        """Make, skip, resume or refuse the stages named in ``asked``, checking the stages they need;
        returns the recipe of every stage that took part, by id."""
        asked = set(asked)
        unknown = asked - set(self.names())
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {','.join(self.names())}")
        made: dict[str, recipes.Recipe] = {}
        # consecutive stages of one name with ``together`` set run as one batch; any other stage alone
        for (_, together), stages in itertools.groupby(self.needed(asked), lambda s: (s.name, s.together is not None)):
            for batch in [list(stages)] if together else [[s] for s in stages]:
                self._run_batch(batch, asked, force, made)
        return made

    def _run_batch(self, batch: list[Stage], asked: set[str], force: bool, made: dict[str, recipes.Recipe]) -> None:
        """Run ``batch`` (one stage, or stages run ``together`` at a time, all checked before any
        starts), adding their recipes to ``made`` and calling each one's ``after``."""
        steps = []
        for s in batch:
            if s.when is not None and not s.when():
                log.debug("%s: not part of this run", s.id)
                continue
            if s.name in asked and s.incomplete is not None:
                self._reopen(s)
            steps.append((s, self._step(s, made, run=s.name in asked, force=force)))
        if batch[0].together is not None:
            for _, step in steps:  # refuse before any of them starts (a long training)
                step.decide()
            with ThreadPoolExecutor(max_workers=max(1, batch[0].together)) as ex:
                recs = list(ex.map(lambda st: st[1].ensure(), steps))
        else:
            recs = [step.ensure() for _, step in steps]
        for (s, _), rec in zip(steps, recs):
            made[s.id] = rec
            if s.after is not None:
                s.after()

    def _step(self, s: Stage, made: Mapping[str, recipes.Recipe], run: bool, force: bool) -> recipes.Step:
        inputs = {}
        for name, ref in s.inputs.items():
            if isinstance(ref, str):
                if ref in made:  # else left out by its ``when``
                    inputs[name] = made[ref]
            else:
                inputs[name] = _value(ref)
        return recipes.Step(
            s.name,
            s.folder,
            options=_value(s.options),
            inputs=inputs,
            outputs=list(_value(s.outputs)),
            byproducts=s.byproducts,
            make=s.make,
            key=s.key,
            label=s.label,
            what=s.what,
            run=run,
            force=force,
        )

    @staticmethod
    def _reopen(s: Stage) -> None:
        """A stage recorded done with files missing (:attr:`Stage.incomplete`) is marked started again,
        so that the run resumes it: the finished files are kept and only the missing ones made."""
        rec = recipes.read_record(s.record)
        if not rec or rec.get("state") != "done":
            return
        missing = list(s.incomplete())
        if missing:
            log.info(
                "%s: %d file(s) missing (%s...): resuming the stage",
                s.label or s.id,
                len(missing),
                Path(missing[0]).name,
            )
            atomic.write_text(s.record, json.dumps({**rec, "state": "started"}, indent=1))

    # ---------------------------------------------------------------- what is done (the scheduler)
    def done(self, stage_id: str) -> bool:
        """Stage ``stage_id`` is recorded done, its recorded outputs exist and none of its files is
        missing (:attr:`Stage.incomplete`): what a run skips. Whether its recipe still matches the
        options is the run's check (a cluster task reruns the command, which refuses a stale one)."""
        s = self._stages[stage_id]
        try:
            if s.when is not None and not s.when():
                return True  # not part of the run: nothing to do
        except (OSError, ValueError, KeyError):
            return False
        rec = recipes.read_record(s.record)
        if not rec or rec.get("state") != "done":
            return False
        if not all((s.folder / o).exists() for o in rec.get("outputs", [])):
            return False
        if s.incomplete is not None:
            try:
                return not list(s.incomplete())
            except (OSError, ValueError, KeyError):
                return False
        return True

    def all_done(self, names: Iterable[str], keys: Iterable[str] | None = None) -> bool:
        """Every stage named in ``names`` (of ``keys`` only, when given; stages without a key always
        count) is :meth:`done`."""
        names, keys = set(names), None if keys is None else {str(k) for k in keys}
        return all(self.done(s.id) for s in self if s.name in names and (keys is None or not s.key or s.key in keys))
