"""`ledger serve --checkpoint-key` writes signed checkpoints on an interval, to the log and
to files in --checkpoint-dir (each continuing the one before, across restarts too), and the
audit proves the history extends them."""

import time

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.core.checkpoint import checkpoint_digest
from ledger.service.checkpoints import read_checkpoint_file
from tests.grpc.conftest import start_server, stop_server

pytestmark = pytest.mark.slow
CHECKPOINT_TIMEOUT_S = 20


def _wait_for_checkpoint_files(directory, count: int) -> list:
    deadline = time.monotonic() + CHECKPOINT_TIMEOUT_S
    while len(files := sorted(directory.glob("checkpoint-*.json"))) < count:
        assert time.monotonic() < deadline, "no checkpoint was written in time"
        time.sleep(0.1)
    return files


def test_the_server_writes_checkpoints_the_audit_then_proves(database_url, tmp_path):
    """Every interval with new events gives a checkpoint file; after more play and a stop,
    the audit verifies the kept file and every stored checkpoint against the trusted key."""
    key, kept = tmp_path / "signing.pem", tmp_path / "kept"
    kept.mkdir()
    assert CliRunner().invoke(main, ["checkpoint-key", str(key)]).exit_code == 0
    server = start_server(
        database_url,
        tmp_path,
        "--checkpoint-key",
        str(key),
        "--checkpoint-interval-s",
        "1",
        "--checkpoint-dir",
        str(kept),
    )
    try:
        with server.client("payments") as payments:
            for n in range(3):
                payments.deposit(
                    idempotency_key=f"d{n}",
                    player_id="p1",
                    currency="EUR",
                    amount="10",
                    rail="psp",
                    rail_id="adyen",
                )
                _wait_for_checkpoint_files(kept, n + 1)
    finally:
        assert stop_server(server) == 0
    before_restart = sorted(kept.glob("checkpoint-*.json"))[-1]
    server = start_server(
        database_url,
        tmp_path,
        "--checkpoint-key",
        str(key),
        "--checkpoint-interval-s",
        "1",
        "--checkpoint-dir",
        str(kept),
    )
    try:
        with server.client("payments") as payments:
            payments.deposit(
                idempotency_key="after-restart",
                player_id="p1",
                currency="EUR",
                amount="10",
                rail="psp",
                rail_id="adyen",
            )
            _wait_for_checkpoint_files(kept, 4)
    finally:
        assert stop_server(server) == 0
    files = sorted(kept.glob("checkpoint-*.json"))
    newest = read_checkpoint_file(files[-1]).checkpoint
    assert newest.previous == checkpoint_digest(read_checkpoint_file(before_restart))
    arguments = [
        "audit",
        "--database-url",
        database_url,
        "--no-projections",
        "--verify-key",
        f"{key}.pub",
    ]
    for path in files:
        arguments += ["--checkpoint", str(path)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert result.output.count("the history extends stored checkpoint") == len(files)
    assert result.output.count("the history extends checkpoint file") == len(files)
