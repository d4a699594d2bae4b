"""A real server through PostgreSQL outages on a private cluster of the test's own: backends
terminated and the cluster stopped and started under concurrent writes. Health flips both
ways, queries answer UNAVAILABLE while the store is down, and the views catch up with every
confirmed deposit exactly once, as `ledger audit` confirms."""

import threading
import time
from decimal import Decimal

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.cli.main import main
from ledger.client import LedgerCallError, Overloaded, Unavailable
from tests.grpc.conftest import RunningServer, log_lines, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SERVICE = "ledger.v1.LedgerService"
STORE = f"{SERVICE}/store"
PROJECTIONS = f"{SERVICE}/projections"
DETECT_S = 15  # the probe's interval and timeout, with a wide margin for a loaded machine
RECOVER_S = 60  # the pool's reconnection backoff grows with the outage; this one is short
WRITE_S = 120  # how long one deposit may take to be confirmed, outages included


class Writer(threading.Thread):
    """Deposits into one player's wallet, key after key, resending each until confirmed."""

    def __init__(self, server: RunningServer, player: str, keys: range) -> None:
        super().__init__(daemon=True)
        self.client = server.client("payments", timeout_s=2, retry_count_max=1)
        self.player, self.keys = player, keys
        self.confirmed = Decimal(0)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for key in self.keys:
                self._deposit(key)
        except BaseException as error:  # handed to the test thread by finish()
            self.error = error

    def _deposit(self, key: int) -> None:
        amount = Decimal(key % 7 + 1) / 4
        deadline = time.monotonic() + WRITE_S
        while True:
            try:
                reply = self.client.deposit(
                    idempotency_key=f"{self.player}-{key}",
                    player_id=self.player,
                    currency="EUR",
                    amount=str(amount),
                    rail="psp",
                    rail_id="adyen",
                )
            except (Unavailable, Overloaded):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            assert reply.outcome in ("OK", "DUPLICATE"), reply.outcome
            self.confirmed += amount
            return

    def finish(self) -> Decimal:
        self.join(timeout=WRITE_S * 2)
        assert not self.is_alive(), f"{self.player}'s deposits did not finish"
        if self.error is not None:
            raise self.error
        self.client.close()
        return self.confirmed


def _writers(server: RunningServer, keys: range) -> list[Writer]:
    writers = [Writer(server, f"outage-p{n}", keys) for n in range(2)]
    for writer in writers:
        writer.start()
    return writers


def _health(server: RunningServer, service: str) -> int:
    with grpc.insecure_channel(server.target) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=2).status


def _wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def _health_is(server: RunningServer, status: int, services=("", SERVICE, STORE)) -> bool:
    return all(_health(server, service) == status for service in services)


def _views_hold(server: RunningServer, confirmed: dict[str, Decimal]) -> bool:
    """Whether the views hold exactly the confirmed deposits: no fewer, none twice."""
    with server.client("auditor", retry_count_max=1) as auditor:
        try:
            [eur] = auditor.get_trial_balance().currencies
            players = {
                player: Decimal(
                    auditor.get_account_balance(account=f"player:{player}:cash:EUR").balance
                )
                for player in confirmed
            }
        except (LedgerCallError, ValueError):
            return False  # still recovering, or nothing projected yet
    total = sum(confirmed.values())
    assert Decimal(eur.debits) <= total, "a deposit was projected twice"
    assert all(players[player] <= confirmed[player] for player in confirmed)
    return Decimal(eur.debits) == Decimal(eur.credits) == total and players == confirmed


def _queries_are_unavailable(server: RunningServer) -> None:
    with server.client("auditor", retry_count_max=1) as auditor:
        for query in (
            auditor.get_trial_balance,
            lambda: auditor.get_account_balance(account="player:outage-p0:cash:EUR"),
            lambda: auditor.get_balance(player_id="outage-p0", currency="EUR"),
        ):
            with pytest.raises(Unavailable) as caught:
                query()
            assert caught.value.status == "UNAVAILABLE"


def test_views_and_health_survive_terminated_backends_and_a_cluster_restart(
    private_postgres, tmp_path
):
    """Terminated backends cost no failed query; a stopped cluster turns health NOT_SERVING
    and queries UNAVAILABLE, and a started one SERVING; the views end exactly right."""
    url = private_postgres.create_database("outages")
    server = start_server(url, tmp_path)
    try:
        confirmed = _terminated_under_writes(server, private_postgres)
        confirmed = _restarted_under_writes(server, private_postgres, confirmed)
        _wait_until(lambda: _views_hold(server, confirmed), RECOVER_S, "the views catch up")
        serving = health_pb2.HealthCheckResponse.SERVING
        _wait_until(
            lambda: _health_is(server, serving, ("", PROJECTIONS)),
            DETECT_S,
            "health says the projections are SERVING",
        )
    finally:
        assert stop_server(server) == 0
    events = [line["event"] for line in log_lines(server)]
    assert events.count("store unreachable") == events.count("store reachable again") == 1
    result = CliRunner().invoke(main, ["audit", "--database-url", url])
    assert result.exit_code == 0, result.output


def _terminated_under_writes(server: RunningServer, cluster) -> dict[str, Decimal]:
    writers = _writers(server, range(40))
    _wait_until(lambda: all(w.confirmed for w in writers), WRITE_S, "deposits are confirmed")
    assert cluster.terminate_backends("outages") > 0
    with server.client("auditor", retry_count_max=1) as auditor:
        auditor.get_trial_balance()  # a broken connection is replaced, not reported
    confirmed = {writer.player: writer.finish() for writer in writers}
    _wait_until(lambda: _views_hold(server, confirmed), RECOVER_S, "the views catch up")
    return confirmed


def _restarted_under_writes(server: RunningServer, cluster, before: dict[str, Decimal]):
    writers = _writers(server, range(40, 80))
    _wait_until(lambda: all(w.confirmed for w in writers), WRITE_S, "deposits are confirmed")
    cluster.stop("fast")
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    _wait_until(lambda: _health_is(server, not_serving), DETECT_S, "health says NOT_SERVING")
    _queries_are_unavailable(server)
    cluster.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    _wait_until(lambda: _health_is(server, serving), DETECT_S, "health says SERVING")
    return {writer.player: before[writer.player] + writer.finish() for writer in writers}
