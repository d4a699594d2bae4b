"""The test clock over gRPC: a real `ledger serve --test-clock` process on SQLite and on
PostgreSQL, whose clock an admin advances so that loss-limit windows, the 24-hour cooling-off,
self-exclusion and bonus expiry are tested without waiting; production stores refuse it."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.client import LedgerClient
from ledger.client.errors import LedgerCallError
from tests.conftest import drop_pg_schema, new_pg_schema
from tests.grpc.conftest import TOKENS, RunningServer, start_server, stop_server

pytestmark = pytest.mark.slow

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
REFUSED_START_TIMEOUT_S = 60


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def clock_server(request, tmp_path_factory) -> Iterator[RunningServer]:
    """A running server on a fresh test store, shared by this module's scenario tests."""
    workdir = tmp_path_factory.mktemp("clock-server")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir}/ledger.sqlite3"
    else:
        url = new_pg_schema(request.getfixturevalue("pg_database"))
    running = start_server(url, workdir, "--test-clock")
    yield running
    assert stop_server(running) == 0
    if request.param == "postgres":
        drop_pg_schema(url)


def _player() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _advance(client: LedgerClient, by: timedelta) -> datetime:
    """Moves the ledger's clock forward by a duration; returns the new ledger time."""
    target = client.advance_clock().ledger_time + by
    reply = client.advance_clock(advance_to=target)
    assert (reply.ledger_time, reply.advanced) == (target, True)
    return target


def _code(call) -> tuple[str, str]:
    """The status name and message of the error a call raises."""
    with pytest.raises(LedgerCallError) as caught:
        call()
    return caught.value.status, caught.value.message


def _funded(client: LedgerClient, player: str, amount: str = "100") -> dict:
    wallet = {"player_id": player, "currency": "EUR"}
    reply = client.deposit(
        idempotency_key=f"{player}-fund", amount=amount, rail="psp", rail_id="stripe", **wallet
    )
    assert reply.outcome == "OK"
    return wallet


def _bet(client: LedgerClient, wallet: dict, key: str, amount: str) -> str:
    return client.bet(
        idempotency_key=key, provider="hub88", amount=amount, round_id=key, **wallet
    ).outcome


def test_a_loss_limit_window_reopens_after_an_advance(clock_server):
    """A loss limit over 24 h refuses a stake, and accepts it once the clock passes 24 h."""
    p, c = _player(), clock_server.client()
    wallet = _funded(c, p)
    assert c.set_limits(idempotency_key=f"{p}-l", loss_limit_24h="10", **wallet).outcome == "OK"
    assert _bet(c, wallet, f"{p}-b1", "10") == "OK"
    assert _bet(c, wallet, f"{p}-b2", "1") == "LIMIT_EXCEEDED"
    _advance(c, 23 * 3600 * SECOND)
    assert _bet(c, wallet, f"{p}-b3", "1") == "LIMIT_EXCEEDED"
    _advance(c, 3600 * SECOND)
    assert _bet(c, wallet, f"{p}-b4", "1") == "OK"


def test_a_limit_increase_waits_out_the_24_hour_cooling_off(clock_server):
    """A raised deposit limit binds at its old value for 24 h of ledger time, then lifts."""
    p, c = _player(), clock_server.client()
    wallet = _funded(c, p, "5")
    deposit = {"rail": "psp", "rail_id": "stripe", **wallet}
    for key, limit in ((f"{p}-l1", "10"), (f"{p}-l2", "100")):
        assert c.set_limits(idempotency_key=key, deposit_limit_24h=limit, **wallet).outcome == "OK"
    assert c.deposit(idempotency_key=f"{p}-d1", amount="50", **deposit).outcome == "LIMIT_EXCEEDED"
    _advance(c, DAY - 60 * SECOND)
    assert c.deposit(idempotency_key=f"{p}-d2", amount="50", **deposit).outcome == "LIMIT_EXCEEDED"
    _advance(c, 60 * SECOND)
    assert c.deposit(idempotency_key=f"{p}-d3", amount="50", **deposit).outcome == "OK"


def test_a_self_exclusion_ends_when_the_clock_passes_it(clock_server):
    """A self-excluded player is blocked until the ledger's time passes the end, then plays."""
    p, c = _player(), clock_server.client()
    wallet = _funded(c, p)
    until = c.advance_clock().ledger_time + 30 * DAY
    reply = c.set_limits(idempotency_key=f"{p}-x", self_excluded_until=until, **wallet)
    assert reply.outcome == "OK"
    assert _bet(c, wallet, f"{p}-b1", "1") == "PLAYER_BLOCKED"
    _advance(c, 29 * DAY)
    assert _bet(c, wallet, f"{p}-b2", "1") == "PLAYER_BLOCKED"
    _advance(c, DAY)
    assert _bet(c, wallet, f"{p}-b3", "1") == "OK"


def test_a_bonus_expires_when_the_clock_passes_its_expiry(clock_server):
    """A bonus is forfeited by the first command after its expiry, recorded at ledger time."""
    p, c = _player(), clock_server.client()
    wallet = _funded(c, p, "10")
    expires_at = c.advance_clock().ledger_time + 7 * DAY
    reply = c.grant_bonus(
        idempotency_key=f"{p}-g",
        amount="20",
        wagering_multiplier=10,
        expires_at=expires_at,
        **wallet,
    )
    assert reply.balances.bonus == "20"
    expired_at = _advance(c, 7 * DAY + SECOND)
    reply = c.deposit(idempotency_key=f"{p}-d", amount="1", rail="psp", rail_id="stripe", **wallet)
    assert (reply.outcome, reply.balances.cash, reply.balances.bonus) == ("OK", "11", "0")
    entries = c.list_transactions(**wallet).entries
    forfeits = [entry for entry in entries if entry.event_type == "BonusForfeited"]
    assert len(forfeits) == 1
    assert forfeits[0].recorded_at >= expired_at


def test_an_advance_is_idempotent_by_its_target_and_bounded(clock_server):
    """A resend moves nothing and answers the time; one advance past 366 days is refused."""
    c = clock_server.client()
    target = _advance(c, DAY)
    again = c.advance_clock(advance_to=target)
    assert not again.advanced and again.ledger_time >= target
    code, details = _code(lambda: c.advance_clock(advance_to=target + 367 * DAY))
    assert code == "INVALID_ARGUMENT"
    assert details.startswith("advance_to: is more than 366 days")


@pytest.mark.parametrize("name", [name for name in TOKENS if name != "admin"])
def test_only_an_admin_may_advance_the_clock(clock_server, name):
    """Every other role is denied AdvanceClock, even a plain reading of the clock."""
    code, _ = _code(lambda: clock_server.client(name).advance_clock())
    assert code == "PERMISSION_DENIED"


def test_an_anonymous_caller_is_told_only_that_it_is_one(clock_server):
    """A caller without a valid token gets UNAUTHENTICATED from AdvanceClock."""
    with LedgerClient(clock_server.target, "not-a-token") as anonymous:
        code, _ = _code(lambda: anonymous.advance_clock())
    assert code == "UNAUTHENTICATED"


def test_the_audit_passes_on_the_test_store_after_advances(clock_server):
    """The log of a test store advanced many times passes the audit."""
    result = CliRunner().invoke(
        main, ["audit", "--database-url", clock_server.database_url, "--no-projections"]
    )
    assert result.exit_code == 0, result.output
    assert "audit passed" in result.output


def _refused_start(database_url: str, workdir, *extra: str) -> subprocess.CompletedProcess:
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
        str(workdir / "auth.toml"),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=REFUSED_START_TIMEOUT_S)


def test_a_production_store_refuses_the_test_clock(database_url, tmp_path):
    """On a production store AdvanceClock is UNIMPLEMENTED, and --test-clock refuses to
    start, naming the option; the store is served again without it."""
    server = start_server(database_url, tmp_path)
    try:
        with server.client() as admin:
            _funded(admin, "p1")
            code, details = _code(lambda: admin.advance_clock())
        assert code == "UNIMPLEMENTED"
        assert "--test-clock" in details
    finally:
        assert stop_server(server) == 0
    refused = _refused_start(database_url, tmp_path, "--test-clock")
    assert refused.returncode == 2, refused.stderr
    assert "Invalid value for '--test-clock'" in refused.stderr
    assert "created without --test-clock" in refused.stderr
    server = start_server(database_url, tmp_path, tokens=server.tokens)
    assert stop_server(server) == 0


def test_time_does_not_go_back_after_a_restart(database_url, tmp_path):
    """A restarted test store resumes at its advanced time; started without --test-clock it
    is refused; its views and log then audit clean."""
    server = start_server(database_url, tmp_path, "--test-clock")
    try:
        with server.client() as admin:
            target = _advance(admin, 10 * DAY)
            _funded(admin, "p1")
            before = admin.get_transaction(idempotency_key="p1-fund").recorded_at
    finally:
        assert stop_server(server) == 0
    refused = _refused_start(database_url, tmp_path)
    assert refused.returncode == 2 and "is a test store" in refused.stderr, refused.stderr
    server = start_server(database_url, tmp_path, "--test-clock", tokens=server.tokens)
    try:
        with server.client() as admin:
            assert admin.advance_clock().ledger_time >= target
            _funded(admin, "p2")
            after = admin.get_transaction(idempotency_key="p2-fund").recorded_at
    finally:
        assert stop_server(server) == 0
    assert after >= before >= target
    runner = CliRunner()
    assert runner.invoke(main, ["project", "--database-url", database_url]).exit_code == 0
    audited = runner.invoke(main, ["audit", "--database-url", database_url])
    assert audited.exit_code == 0, audited.output
