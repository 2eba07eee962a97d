"""The project's own files agree with each other: every make target is documented and every
documented one exists; pyproject.toml pins what the requirements files pin; the README stays one
page and its links resolve."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# targets that are steps of others, not offered to users (each is named in the Makefile's comments)
INTERNAL = {"apt", "venv", "caffe", "caffe-selftest-deps", "help"}


def makefile_targets() -> set[str]:
    """Explicit targets of the Makefile (pattern rules as written, e.g. ``demo-%``)."""
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([a-z][\w%-]*)\s*:(?!=)", text, flags=re.M)}


def documented_targets() -> set[str]:
    """Every ``make X`` written in the README and docs/ (X as typed: ``usecase7``, ``demo-epi``)."""
    found = set()
    for doc in DOCS:
        found |= set(re.findall(r"`make ([a-z][\w<>-]*)", doc.read_text()))
    return found


def _matches(name: str, target: str) -> bool:
    if "%" not in target:
        return name == target
    prefix = target.split("%")[0]
    return name.startswith(prefix) and len(name) > len(prefix)


def test_every_make_target_is_documented():
    docs = documented_targets()
    missing = []
    for target in sorted(makefile_targets() - INTERNAL):
        if "%" in target:
            # a pattern rule is documented by its placeholder form (``make usecase<N>``) or an instance
            prefix = target.split("%")[0]
            if not any(d.startswith(prefix) and d != prefix.rstrip("-") for d in docs):
                missing.append(target)
        elif target not in docs:
            missing.append(target)
    assert not missing, f"make targets not documented in README.md or docs/: {missing}"


def test_every_documented_make_target_exists():
    targets = makefile_targets()
    unknown = sorted(
        d
        for d in documented_targets()
        if not any(_matches(d.replace("<", "").replace(">", ""), t) or _matches(d, t) for t in targets)
    )
    assert not unknown, f"documented make targets that the Makefile does not have: {unknown}"


def test_pattern_matching_is_strict():
    # the check above must be able to fail: a made-up name matches no target
    assert not any(_matches("nonexistent-target", t) for t in makefile_targets())
    assert _matches("demo-epi", "demo-%") and not _matches("demo", "demo-%")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_pyproject_pins_what_the_requirements_pin():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*meta["dependencies"], *(d for group in meta["optional-dependencies"].values() for d in group)]
    pyproject = {d.split("==")[0].lower(): d.split("==")[1] for d in declared}
    requirements = {}
    for name in ("requirements.txt", "requirements-unet.txt", "requirements-selftest.txt"):
        requirements |= _pins(ROOT / name)
    assert pyproject == requirements


def test_readme_is_one_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move the detail to docs/"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path):
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        if not (doc.parent / target).exists():
            broken.append(target)
    assert not broken, f"{doc.name}: links to missing files {broken}"


# --------------------------------------------------------------------------- imports and stages

#: Project modules that import torch at their top: importing them lazily keeps the rest torch-free.
TORCH_MODULES = ("pipeline.usecases.unet.",)


def _in_function_project_imports(path: Path) -> list[str]:
    """``<line>: <module>`` of each import of a project module inside a function of ``path``."""
    import ast

    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")] if node.level else [node.module or ""]
                names += [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if not (names[0].startswith(".") or names[0].split(".")[0] == "pipeline"):
                continue
            if any(n.startswith(TORCH_MODULES) for n in names):
                continue
            found.append(f"{node.lineno}: {names[0]}")
    return found


def test_project_modules_are_imported_at_module_top():
    """Issue 23: no module of pipeline/ imports a project module inside a function (lazy imports
    are for torch and Caffe only, which no module but the U-Net's imports at its top)."""
    offenders = {
        str(p.relative_to(ROOT)): hits
        for p in sorted((ROOT / "pipeline").rglob("*.py"))
        if (hits := _in_function_project_imports(p))
    }
    assert offenders == {}


def test_every_stage_runs_through_the_graph():
    """Issue 23: stages are declared in a pipeline.graph.Graph; only the graph (and the generated
    demo cohort, made before a run's data is known) calls the recipe rule directly."""
    allowed = {"pipeline/graph.py", "pipeline/recipes.py", "pipeline/usecases/base.py"}
    calls = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "pipeline").rglob("*.py")
        if re.search(r"recipes\.(Step|stage)\(", p.read_text())
    }
    assert calls <= allowed, sorted(calls - allowed)
