"""docs/contract.md and the .proto's comments are the contract integrators read, so they are
held against the code: the role table, the outcome precedence, a comment on every method and
outcome, and no citation of a document the repository does not ship."""

import re
from pathlib import Path

import pytest

from ledger.api.auth import METHODS, PERMISSIONS
from ledger.core.outcomes import Outcome
from ledger.v1 import ledger_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = (ROOT / "docs" / "contract.md").read_text()
PROTO = (ROOT / "protos" / "ledger" / "v1" / "ledger.proto").read_text()


def _section(title: str) -> str:
    """The text of one `## title` section of the contract."""
    return CONTRACT.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table_rows(section: str) -> list[list[str]]:
    """The cells of a markdown table's body rows, backticks removed."""
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_the_role_table_is_the_permission_table():
    """Each role's row lists exactly the methods the server lets it call."""
    documented = {}
    for role, methods in _table_rows(_section("Roles")):
        allowed = set(METHODS) if methods == "every method" else set(methods.split(", "))
        documented[role] = allowed
    assert documented == {role: set(methods) for role, methods in PERMISSIONS.items()}


def test_the_outcome_table_is_the_precedence_of_the_engine_and_the_wire():
    """The documented order is the enum's, in the engine and in the .proto."""
    documented = [row[1] for row in _table_rows(_section("Outcomes and their precedence"))]
    assert documented == [outcome.value for outcome in Outcome]
    on_the_wire = [name.removeprefix("OUTCOME_") for name in pb.Outcome.keys()[1:]]
    assert on_the_wire == documented


def _declarations(pattern: str) -> list[tuple[str, str]]:
    """(name, the line before it) for each proto line matching pattern, blanks skipped."""
    lines = [line.strip() for line in PROTO.splitlines() if line.strip()]
    found = []
    for index, line in enumerate(lines):
        match = re.match(pattern, line)
        if match:
            found.append((match.group(1), lines[index - 1]))
    return found


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("method", r"rpc (\w+)\("),
        ("outcome", r"(OUTCOME_\w+) = \d+;"),
    ],
)
def test_every_method_and_outcome_has_a_comment_in_the_proto(kind, pattern):
    """Nothing a client can call or be answered is left undescribed on the wire contract."""
    declarations = _declarations(pattern)
    assert len(declarations) == (len(METHODS) if kind == "method" else len(pb.Outcome.keys()))
    for name, before in declarations:
        assert before.startswith("//"), f"{kind} {name} has no comment"


def test_every_status_the_server_sends_is_documented_with_its_resend_rule():
    """The status table names every code the server's mapping or gRPC itself can answer."""
    table = _section("Status codes and when to resend")
    for code in (
        "INVALID_ARGUMENT",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "RESOURCE_EXHAUSTED",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "CANCELLED",
        "INTERNAL",
        "UNIMPLEMENTED",
    ):
        assert f"| `{code}`" in table, code
        assert f"//   {code}" in PROTO, code


def test_nothing_cites_the_unshipped_specification():
    """Users have docs/, not the product specification: no 'spec section' citations remain."""
    folders = ("ledger", "projections", "adapters", "tests", "docs", "protos", "benchmarks")
    paths = [
        ROOT / "README.md",
        *(
            p
            for f in folders
            for p in (ROOT / f).rglob("*")
            if p.suffix in {".py", ".md", ".proto"}
        ),
    ]
    citation = re.compile(r"spec(ification)? (section|§)|spec §|LEDGER\.md")
    for path in paths:
        if path.parent.name == "v1" and path.parent.parent.name == "ledger":
            continue  # generated from the .proto
        if path == Path(__file__):
            continue
        assert not citation.search(path.read_text()), path.relative_to(ROOT)
