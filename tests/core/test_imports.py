"""The import graph keeps DESIGN.md's shape: no module cycle (imports inside functions count too), no stage
importing a stage above it, stages reached through their packages; and the packages that promise a light
import keep that promise."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = ("ragtune", "ingest", "retriever", "tuner", "serve", "eval", "demo")

# Which stages each stage may import (DESIGN.md: `ingest → retriever ← serve ← eval`, tuner reads the index
# through retriever and hands serve models on disk, not by import; ragtune/ holds the shared contracts).
MAY_IMPORT = {
    "ragtune": set(),
    "retriever": {"ragtune"},
    "ingest": {"ragtune", "retriever"},
    "tuner": {"ragtune", "retriever"},
    "serve": {"ragtune", "retriever"},
    "eval": {"ragtune", "retriever", "serve"},
    "demo": {"ragtune", "ingest", "retriever", "tuner", "serve", "eval"},
}
# The one module of ragtune/ allowed to reach stages (lazily, by name, when a command runs).
STAGE_LOADERS = {"ragtune.cli"}


def _modules() -> dict[str, Path]:
    mods = {}
    for stage in STAGES:
        for path in sorted((REPO / stage).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports anywhere in its body (`from pkg import sub` names pkg.sub)."""
    mods = _modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.add(sub if sub in mods else known(base))
        graph[mod] = targets - {None, mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _import_graph()


def test_graph_sees_every_kind_of_import(graph):
    # guards the parser: a function-level import, a `from package import submodule` and a package import
    assert "retriever.index" in graph["retriever.admin"]
    assert "retriever.faiss_index" in graph["retriever.index"]
    assert "retriever" in graph["ingest.pipeline"]


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_stage_imports_a_stage_above_it(graph):
    bad = [
        f"{mod} imports {t}"
        for mod, targets in sorted(graph.items())
        if mod not in STAGE_LOADERS
        for t in sorted(targets)
        if t.split(".")[0] != mod.split(".")[0] and t.split(".")[0] not in MAY_IMPORT[mod.split(".")[0]]
    ]
    assert bad == []


def test_stages_are_used_through_their_packages(graph):
    # ragtune/ holds the shared contracts (records, prompt, errors...), imported module by module
    bad = [
        f"{mod} imports {t}"
        for mod, targets in sorted(graph.items())
        for t in sorted(targets)
        if t.split(".")[0] not in (mod.split(".")[0], "ragtune") and "." in t
    ]
    assert bad == []


# (module, what importing it must not load): each promise is written in that module's docstring.
LIGHT_IMPORTS = [
    ("ingest", ("torch", "sentence_transformers")),
    ("retriever", ("torch", "sentence_transformers")),
    ("retriever.encoder", ("torch", "sentence_transformers")),
    ("tuner", ("torch", "transformers")),
    ("serve", ("torch", "fastapi")),
    ("serve.types", ("torch", "transformers", "fastapi")),
    ("eval", ("torch", "transformers")),
    ("ragtune.cli", ("torch", *[s for s in STAGES if s != "ragtune"])),
]


@pytest.mark.parametrize(("module", "heavy"), LIGHT_IMPORTS, ids=[m for m, _ in LIGHT_IMPORTS])
def test_import_is_light(module, heavy):
    code = (
        f"import {module}, sys; loaded = [m for m in {heavy!r} if m in sys.modules]; "
        f"assert not loaded, f'importing {module} loaded {{loaded}}'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
