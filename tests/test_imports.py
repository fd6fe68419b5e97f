"""The package imports one way: no circles between modules, and small pieces stay small to import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import augment
import classifiers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("augment", "classifiers")


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """Our modules that ``name`` imports anywhere in its file (function-level imports too), with a line."""
    found: dict[str, int] = {}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .x import y
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.setdefault(target, node.lineno)
    return found


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                group.append(top)
            if group:
                found.append(sorted([node, *group]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    files = module_files()
    edges = {name: imported_modules(name, path, set(files)) for name, path in files.items()}
    circles = [" -> ".join(group) + "  (" + ", ".join(f"{a}:{edges[a][b]} imports {b}" for a in group
                                                       for b in group if b in edges[a]) + ")"
               for group in cycles(edges)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_check_sees_a_circle_through_a_function_level_import(tmp_path: Path):
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    known = {"a", "b"}
    edges = {name: imported_modules(name, tmp_path / f"{name}.py", known) for name in known}
    assert cycles(edges) == [["a", "b"]]


@pytest.mark.parametrize("module", ["augment.errors", "augment.config", "augment.tf_child", "augment.rundir", "classifiers.base"])
def test_a_small_piece_does_not_load_torch(module: str):
    """Every classifier and the TensorFlow child import augment.errors; configs check classifier names."""
    code = f"import sys, {module}; print(sorted({{'torch', 'transformers', 'sklearn'}} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("package", [augment, classifiers], ids=lambda p: p.__name__)
def test_every_public_name_loads(package):
    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        getattr(package, "nope")
