"""The stage graph (pipeline/graph.py): which stages run, skip, refuse, resume; what the scheduler sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import recipes
from pipeline.graph import Graph, Stage


def _chain(work: Path, calls: list[str], seed: int = 1, with_b: bool = True) -> Graph:
    """a -> b (only when ``with_b``) -> c, plus d (needs a only); each writes <id>.txt and logs its call."""

    def writer(name: str):
        def make() -> None:
            calls.append(name)
            (work / f"{name}.txt").write_text(f"{name} {seed}")

        return make

    g = Graph()
    g.add(Stage("a", work, options={"seed": seed}, outputs=["a.txt"], make=writer("a")))
    g.add(Stage("b", work, inputs={"a": "a"}, outputs=["b.txt"], make=writer("b"), when=lambda: with_b))
    g.add(Stage("c", work, inputs={"a": "a", "b": "b"}, outputs=["c.txt"], make=writer("c")))
    g.add(Stage("d", work, inputs={"a": "a"}, outputs=["d.txt"], make=writer("d")))
    return g


def test_needed_is_the_asked_stages_and_their_inputs_in_order(tmp_path):
    g = _chain(tmp_path, [])
    assert [s.id for s in g.needed({"c"})] == ["a", "b", "c"]
    assert [s.id for s in g.needed({"d"})] == ["a", "d"]
    assert [s.id for s in g.needed({"d", "b"})] == ["a", "b", "d"]
    assert g.names() == ("a", "b", "c", "d")


def test_run_makes_then_skips_and_checks_inputs(tmp_path):
    calls: list[str] = []
    g = _chain(tmp_path, calls)
    with pytest.raises(recipes.MissingInput, match=r"a\.txt\) not found; the a stage makes it"):
        g.run({"c"})  # a and b are only checked when not asked for
    made = g.run({"a", "b", "c"})
    assert calls == ["a", "b", "c"] and set(made) == {"a", "b", "c"}
    g.run({"a", "b", "c", "d"})
    assert calls == ["a", "b", "c", "d"]  # a, b, c skipped: done with the same recipe


def test_changed_option_is_refused_then_forced_through_the_chain(tmp_path):
    calls: list[str] = []
    _chain(tmp_path, calls).run({"a", "b", "c"})
    g2 = _chain(tmp_path, calls, seed=2)
    with pytest.raises(recipes.StaleRecipe, match="seed=1, this run asks seed=2"):
        g2.run({"a", "b", "c"})
    calls.clear()
    g2.run({"a", "b", "c"}, force=True)
    assert calls == ["a", "b", "c"]  # a made again, so b and c (their input's made id changed)
    assert (tmp_path / "c.txt").read_text() == "c 2"


def test_when_false_leaves_the_stage_and_the_inputs_naming_it_out(tmp_path):
    calls: list[str] = []
    made = _chain(tmp_path, calls, with_b=False).run({"a", "b", "c"})
    assert calls == ["a", "c"] and "b" not in made
    assert set(made["c"]["inputs"]) == {"a"}  # the recipe of c does not name b


def test_together_checks_every_stage_before_any_starts(tmp_path):
    calls: list[str] = []

    def graph(opt: int) -> Graph:
        g = Graph()
        for k in ("1", "2"):
            g.add(
                Stage(
                    "train",
                    tmp_path,
                    key=k,
                    options={"lr": opt if k == "2" else 0},
                    outputs=[f"m{k}"],
                    make=lambda k=k: (calls.append(k), (tmp_path / f"m{k}").write_text(k)),
                    together=1,
                )
            )
        return g

    graph(0).run({"train"})
    (tmp_path / "m1").unlink()  # fold 1 must be made again...
    calls.clear()
    with pytest.raises(recipes.StaleRecipe, match="lr=0, this run asks lr=5"):
        graph(5).run({"train"})  # ...but fold 2 is stale: refused before fold 1 starts
    assert calls == []


def test_incomplete_stage_is_resumed_when_asked_and_not_done_for_the_scheduler(tmp_path):
    out = tmp_path / "out"
    images = ["x", "y"]
    calls: list[list[str]] = []

    def make() -> None:
        out.mkdir(exist_ok=True)
        todo = [i for i in images if not (out / i).exists()]
        calls.append(todo)
        for i in todo:
            (out / i).write_text(i)

    def graph() -> Graph:
        return Graph(
            [
                Stage(
                    "outputs",
                    tmp_path,
                    outputs=["out"],
                    make=make,
                    incomplete=lambda: [out / i for i in images if not (out / i).exists()],
                )
            ]
        )

    graph().run({"outputs"})
    assert graph().done("outputs")
    (out / "y").unlink()
    assert not graph().done("outputs")  # recorded done, a file missing
    graph().run({"outputs"})
    assert calls == [["x", "y"], ["y"]]  # resumed: only the missing image made
    assert graph().done("outputs")
    assert graph().all_done({"outputs"}, keys=["9"])  # a stage without a key counts for every key


def test_graph_rejects_unknown_inputs_and_stages(tmp_path):
    g = Graph()
    with pytest.raises(ValueError, match="names 'nope', not an earlier stage"):
        g.add(Stage("x", tmp_path, inputs={"a": "nope"}))
    g.add(Stage("x", tmp_path))
    with pytest.raises(ValueError, match="two stages with the id 'x'"):
        g.add(Stage("x", tmp_path))
    with pytest.raises(ValueError, match="unknown stage"):
        g.run({"y"})
