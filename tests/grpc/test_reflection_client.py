"""The language-neutral example of docs/contract.md: a Node.js client that knows no .proto
discovers LedgerService through reflection v1, deposits, resends, and reads a refusal's
google.rpc.BadRequest from its trailer, against a real `ledger serve`.

It needs node and npm, and `npm ci` needs the npm registry (or a warm npm cache): without
them the test is skipped with the reason, in CI too, since the example is documentation and
the reflection it relies on is covered in Python by tests/grpc/test_reflection.py."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "reflection-client"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The example copied to a temporary folder with its locked packages installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the Node.js reflection example")
    folder = tmp_path_factory.mktemp("reflection-client")
    for name in ("package.json", "package-lock.json", "call.mjs"):
        shutil.copy(EXAMPLE / name, folder / name)
    try:
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm ci took over {INSTALL_TIMEOUT_S} s: is the npm registry reachable?")
    if installed.returncode != 0:
        pytest.skip(f"npm ci could not install the example: {installed.stderr[-500:]}")
    return folder


def _run(example: Path, server, player: str, key: str) -> dict:
    """Runs the example once; its JSON lines merged into one dict."""
    environment = {
        "PATH": os.environ["PATH"],
        "LEDGER_TARGET": server.target,
        "LEDGER_TOKEN": server.tokens["admin"],
        "LEDGER_PLAYER": player,
        "LEDGER_KEY": key,
    }
    ran = subprocess.run(
        ["node", "call.mjs"],
        cwd=example,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert ran.returncode == 0, ran.stderr
    answers: dict = {}
    for line in ran.stdout.splitlines():
        answers.update(json.loads(line))
    return answers


def test_a_node_client_discovers_the_service_and_calls_it_through_reflection(example, server):
    """Reflection alone is enough to deposit, be answered DUPLICATE, and read a BadRequest."""
    player, key = f"node-{uuid.uuid4().hex[:8]}", f"node-{uuid.uuid4().hex}"
    first = _run(example, server, player, key)
    assert {"ledger.v1.LedgerService", "grpc.reflection.v1.ServerReflection"} <= set(
        first["services"]
    )
    deposit = first["deposit"]
    assert (deposit["outcome"], deposit["balances"]["cash"]) == ("OUTCOME_OK", "10.5")
    refusal = first["refusal"]
    assert refusal["code"] == "INVALID_ARGUMENT"
    [violation] = refusal["BadRequest"]["field_violations"]
    assert violation["field"] == "amount"
    again = _run(example, server, player, key)["deposit"]
    assert (again["outcome"], again["journal_id"]) == ("OUTCOME_DUPLICATE", deposit["journal_id"])
