"""Layering rules, checked on the source: who may import whom, and no import cycles.

A small AST walk (no import-linter): every `import`/`from ... import` of a `judge_service` module,
at module level, inside functions, and under TYPE_CHECKING, so a cycle hidden in a lazy import
counts too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "judge_service"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every judge_service module a file imports (resolving relative imports and `from pkg import mod`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("judge_service"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("judge_service"):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
                    found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    return {module_name(p): imports_of(p) for p in files}


def test_every_module_imports() -> None:
    for name in sorted(graph()):
        importlib.import_module(name)


def test_jobs_never_import_the_api_or_the_composition_root() -> None:
    for name, targets in graph().items():
        if name.startswith("judge_service.jobs"):
            bad = sorted(t for t in targets if t.startswith(("judge_service.api", "judge_service.service")))
            assert not bad, f"{name} imports {bad}"


def test_contract_and_judging_core_stay_free_of_web_and_database() -> None:
    core = ("judge_service.contract", "judge_service.rubrics", "judge_service.engine.verdict", "judge_service.stats")
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name.startswith(core):
            text = path.read_text(encoding="utf-8")
            assert "import fastapi" not in text and "from fastapi" not in text, name
            assert "sqlalchemy" not in text, name
            assert "judge_service.jobs" not in text and "judge_service.api" not in text, name


def cycle_in(nodes: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among `nodes` (depth-first search), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(nodes.get(node, ())):
            if target not in nodes:
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("scope", ["judge_service.jobs", "judge_service"])
def test_no_import_cycle(scope: str) -> None:
    nodes = {n: t for n, t in graph().items() if n.startswith(scope)}
    assert cycle_in(nodes) is None


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None
