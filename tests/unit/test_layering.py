"""The layering rules: the domain core imports nothing with I/O, clocks or randomness, and
dependencies point inward, ring by ring: core ← config ← event-log port ← store ← service
(with the projections) ← API ← entry points. The client stands apart: the core and the
generated code only."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "ledger" / "core"
CORE_ALLOWED = {
    "__future__",
    "abc",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",
    "re",
    "struct",
    "typing",
    "uuid",
    "immutables",
    "msgspec",
    "ledger",
}
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


# Each module's ring, innermost first; a module imports only from its own ring and inner ones.
RINGS = (
    ("core", ("ledger.core",)),
    ("config", ("ledger.config", "ledger.files", "ledger.logs")),
    ("port", ("ledger.event_log",)),
    ("store", ("ledger.store",)),
    ("service", ("ledger.service", "projections")),
    ("api", ("ledger.api",)),
    ("console", ("ledger.console",)),
    (
        "entry points",
        ("ledger.cli", "ledger.__main__", "projections.cli", "projections.export_cli"),
    ),
)
GENERATED = "ledger.v1"
# What code outside the store may take from it: the URL's environment, which errors are
# outages, and the adapter to open. Nothing else (recorders, mapper, queries) leaves it.
STORE_ENTRANCES = {"ledger.store.database", "ledger.store.outages", "ledger.store.open"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _ring(module: str) -> int | None:
    """The ring of a ledger or projections module (the longest matching prefix wins)."""
    best, found = -1, None
    for index, (_, prefixes) in enumerate(RINGS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def _engine_files() -> list[Path]:
    paths = [*(ROOT / "ledger").rglob("*.py"), *(ROOT / "projections").rglob("*.py")]
    return sorted(
        p
        for p in paths
        if _module(p) not in {"ledger", "ledger.__init__"}
        and not _module(p).startswith((GENERATED, "ledger.client"))
    )


ENGINE_FILES = _engine_files()


@pytest.mark.parametrize("path", ENGINE_FILES, ids=[_module(p) for p in ENGINE_FILES])
def test_every_module_imports_only_its_own_ring_or_inner_ones(path):
    """A module never imports from a ring outside its own (the store never the service, the
    service never the API, nothing but an entry point the CLI)."""
    ring = _ring(_module(path))
    assert ring is not None, f"{_module(path)} belongs to no ring: add it to RINGS"
    for name in _imports(path):
        if not name.startswith(("ledger", "projections")) or name.startswith(GENERATED):
            continue
        assert not name.startswith("ledger.client"), f"{_module(path)} imports the client"
        theirs = _ring(name)
        assert theirs is not None and theirs <= ring, (
            f"{_module(path)} ({RINGS[ring][0]}) imports {name} ({RINGS[theirs][0]})"
        )


@pytest.mark.parametrize("path", ENGINE_FILES, ids=[_module(p) for p in ENGINE_FILES])
def test_only_the_store_reaches_the_event_tables(path):
    """Outside ledger/store, code reaches the event store through the port: it imports no
    recorder, mapper or query module of the store or the library, and names no event table."""
    module = _module(path)
    if module.startswith("ledger.store"):
        return
    for name in _imports(path):
        if name.startswith("ledger.store"):
            assert name in STORE_ENTRANCES, f"{module} imports {name}"
        if name.startswith("eventsourcing"):
            assert name in {"eventsourcing", "eventsourcing.persistence", "eventsourcing.domain"}
    for name in _names_from(path, "eventsourcing.persistence"):
        assert name.endswith("Error"), f"{module} takes {name} from the library"
    source = path.read_text()
    for table in ("ledger_events", "notification_id", "events_table_name"):
        assert table not in source, f"{module} names the event table ({table})"


def test_the_client_imports_only_the_core_and_the_generated_code():
    """ledger.client can be shipped to an integrator without the engine: it imports the core
    (amounts, errors) and the generated protobuf code, and nothing else of the ledger."""
    for path in sorted((ROOT / "ledger" / "client").rglob("*.py")):
        for name in _imports(path):
            if name.startswith("ledger") and not name.startswith(("ledger.client", GENERATED)):
                assert name.startswith("ledger.core"), f"{path.name} imports {name}"


def _names_from(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


def test_functions_stay_under_70_lines_and_lines_under_100_columns():
    """TigerStyle's hard limits hold across the engine's own code."""
    sources = [(ROOT / folder).rglob("*.py") for folder in ("ledger", "projections", "adapters")]
    for path in sorted(path for paths in sources for path in paths):
        if path.parent.name == "v1":
            continue  # generated by `make protos`
        source = path.read_text()
        for number, line in enumerate(source.splitlines(), 1):
            assert len(line) <= 100, f"{path.name}:{number} is {len(line)} columns"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 70, f"{path.name}:{node.name} is {length} lines"


def test_generated_code_stays_at_the_edge():
    """Only the gRPC conversion, servicer, server and client import generated protobuf code."""
    allowed = {
        "api/convert.py",
        "api/servicer.py",
        "api/server.py",
        "client/client.py",
        "client/results.py",
        "client/batching.py",
    }
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        if path.parent.name == "v1" or path.relative_to(ROOT / "ledger").as_posix() in allowed:
            continue
        assert not any(name.startswith("ledger.v1") for name in _imports(path)), path.name


def test_adapters_reach_the_engine_only_through_the_client():
    """Adapters import the gRPC client, never the application, the core or the store."""
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        for name in _imports(path):
            if name.startswith("ledger"):
                assert name in {"ledger.client", "ledger.logs", "ledger.v1.ledger_pb2"}, (
                    f"{path.name}: {name}"
                )


def test_console_is_an_entry_point():
    """Only the CLI imports the web console; the console itself never imports the CLI."""
    for folder in ("ledger", "projections", "adapters"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.parent.name in ("console", "cli"):
                continue
            imported = _imports(path)
            assert not any(name.startswith("ledger.console") for name in imported), path
    for path in (ROOT / "ledger" / "console").glob("*.py"):
        assert not any(name.startswith("ledger.cli") for name in _imports(path)), path.name
