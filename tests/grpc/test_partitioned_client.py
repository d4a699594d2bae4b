"""Two engine processes on one database behind `PartitionedLedgerClient`: each player's calls
reach the process that owns it, batches are split by owner and answered in order, and any
process still serves any wallet correctly."""

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.client import PartitionedLedgerClient, partition_of
from ledger.v1 import ledger_pb2 as pb
from tests.conftest import drop_pg_schema, new_pg_schema
from tests.grpc.conftest import start_announcing, stop_process, write_auth_config

PLAYERS = [f"part-p{n}" for n in range(24)]


def _start(database_url: str, auth: Path, log: Path):
    command = [
        sys.executable,
        "-m",
        "ledger",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--auth-config",
        str(auth),
        "--no-projections",
    ]
    return start_announcing(command, log)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engines(request, tmp_path_factory) -> Iterator[tuple[list[str], str, list[Path]]]:
    """Two `ledger serve` processes sharing one store and one client configuration."""
    workdir = tmp_path_factory.mktemp("partitioned")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir}/ledger.sqlite3"
    else:
        url = new_pg_schema(request.getfixturevalue("pg_database"))
    token = write_auth_config(workdir / "auth.toml")["admin"]
    logs = [workdir / f"server-{n}.log" for n in range(2)]
    started = [_start(url, workdir / "auth.toml", log) for log in logs]
    yield [address for _, address in started], token, logs
    for process, _ in started:
        assert stop_process(process) == 0
    if request.param == "postgres":
        drop_pg_schema(url)


def _calls(log: Path, method: str) -> int:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return sum(1 for line in lines if line.get("event") == "call" and line["method"] == method)


def _deposit(player: str, key: str, amount: str) -> dict:
    return {
        "idempotency_key": key,
        "player_id": player,
        "currency": "EUR",
        "amount": amount,
        "rail": "psp",
        "rail_id": "stripe",
    }


def test_each_players_calls_reach_its_owner(engines):
    """Every deposit lands on the process `partition_of` names, and the balances are exact."""
    targets, token, logs = engines
    with PartitionedLedgerClient(targets, token) as ledger:
        for player in PLAYERS:
            assert ledger.deposit(**_deposit(player, f"{player}-d", "5")).outcome == "OK"
        for player in PLAYERS:
            balances, _ = ledger.get_balance(player_id=player, currency="EUR")
            assert balances.cash == "5"
    owners = Counter(partition_of(player, 2) for player in PLAYERS)
    assert [_calls(log, "Deposit") for log in logs] == [owners[0], owners[1]]
    assert min(owners.values()) > 0  # both processes took part


def test_a_mixed_batch_is_split_by_owner_and_answered_in_order(engines):
    """One batch over players of both processes: one SubmitBatch each, results in order."""
    targets, token, logs = engines
    before = [_calls(log, "SubmitBatch") for log in logs]
    players = [f"batch-p{n}" for n in range(6)]  # fresh wallets, of both owners
    assert {partition_of(player, 2) for player in players} == {0, 1}
    commands = [
        pb.Command(deposit=pb.DepositRequest(**_deposit(player, f"{player}-b", str(n))))
        for n, player in enumerate(players, start=1)
    ]
    with PartitionedLedgerClient(targets, token) as ledger:
        replies = ledger.submit_batch(commands)
    assert [reply.outcome for reply in replies] == ["OK"] * len(commands)
    assert [reply.balances.cash for reply in replies] == ["1", "2", "3", "4", "5", "6"]
    assert [_calls(log, "SubmitBatch") - b for log, b in zip(logs, before, strict=True)] == [1, 1]


def test_any_process_serves_any_wallet_correctly(engines):
    """Routing is only for speed: a call sent to the other process is still exact."""
    targets, token, _ = engines
    player = "misrouted-p0"
    with PartitionedLedgerClient(targets[::-1], token) as misrouted:
        reply = misrouted.deposit(**_deposit(player, f"{player}-m", "0.5"))
    with PartitionedLedgerClient(targets, token) as ledger:
        balances, _ = ledger.get_balance(player_id=player, currency="EUR")
    assert reply.outcome == "OK" and balances.cash == reply.balances.cash
