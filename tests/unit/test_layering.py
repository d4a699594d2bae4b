"""The layering rules: the domain core imports nothing with I/O, clocks or randomness, and
dependencies point inward (core ← application ← entry points)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "ledger" / "core"
CORE_ALLOWED = {
    "__future__", "abc", "collections", "dataclasses", "datetime", "enum", "functools",
    "hashlib", "re", "typing", "uuid", "immutables", "msgspec", "ledger",
}  # fmt: skip
# Names from allowed modules that read ambient state and are therefore banned in the core.
CORE_BANNED_CALLS = {"now", "utcnow", "today", "uuid1", "uuid4", "time", "random"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


CORE_FILES = sorted(CORE.glob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=[p.name for p in CORE_FILES])
def test_core_imports_only_pure_modules(path):
    """Core modules import only the standard library's pure parts, msgspec and immutables."""
    for name in _imports(path):
        assert name.split(".")[0] in CORE_ALLOWED, f"{path.name} imports {name}"
        if name.startswith("ledger"):
            assert name.startswith("ledger.core"), f"{path.name} imports outward: {name}"


@pytest.mark.parametrize("path", CORE_FILES, ids=[p.name for p in CORE_FILES])
def test_core_reads_no_clock_or_randomness(path):
    """No core module calls now(), uuid4() or similar: time and ids are passed in."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in CORE_BANNED_CALLS, f"{path.name}:{node.lineno} calls {name}()"


def test_application_never_imports_entry_points():
    """The application layer does not depend on the CLI (dependencies point inward)."""
    for path in (ROOT / "ledger").glob("*.py"):
        if path.name in {"cli.py", "demo.py", "summary.py"}:
            continue
        assert not {"ledger.cli", "ledger.demo"} & _imports(path), path.name


def test_functions_stay_under_70_lines_and_lines_under_100_columns():
    """TigerStyle's hard limits hold across the engine's own code."""
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        source = path.read_text()
        for number, line in enumerate(source.splitlines(), 1):
            assert len(line) <= 100, f"{path.name}:{number} is {len(line)} columns"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 70, f"{path.name}:{node.name} is {length} lines"
