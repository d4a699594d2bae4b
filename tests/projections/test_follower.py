"""The projection follower through faults: a store it cannot write pauses it, logged once,
and it catches up exactly once afterwards; a bug stops it, logged once with its traceback.

SQLite's outage is a writer holding the file's lock past the follower's busy timeout (a
backup, a long manual transaction); PostgreSQL's, a lost server, is tested against a real
server in tests/grpc/test_store_outages.py.
"""

import sqlite3
import time

from structlog.testing import capture_logs

from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from projections.follower import FollowerState, ProjectionFollower
from projections.runner import ProjectionRunner
from projections.stores import SqliteProjectionStore, open_projection_store
from tests.builders import EUR, deposit
from tests.integration.raw_store import RawStore

WAIT_S = 10
LOCK_TIMEOUT_S = 0.05
PAUSED_S = 0.5  # long enough for several attempts at the shortest backoff


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _events(logs: list[dict], event: str) -> list[dict]:
    return [line for line in logs if line["event"] == event]


def test_a_locked_store_pauses_the_follower_once_and_it_catches_up_exactly(tmp_path):
    """While another writer holds the lock the follower retries quietly and reports itself
    unhealthy; released, it applies every event once and logs one pause and one resume."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        ledger.execute(deposit("d2", 5 * EUR))
        store = SqliteProjectionStore(str(path), lock_timeout_s=LOCK_TIMEOUT_S)
        follower = ProjectionFollower(ProjectionRunner(ledger.log, store))
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # readers go on (WAL); writers wait, then fail
        with capture_logs() as logs:
            follower.start()
            _wait_until(lambda: follower.state is FollowerState.PAUSED, "the follower pauses")
            time.sleep(PAUSED_S)
            assert not follower.healthy and store.position() == 0
            blocker.execute("ROLLBACK")
            last = log_size(ledger.log)
            _wait_until(lambda: store.position() == last, "the views catch up")
            follower.stop()
        assert follower.healthy and not follower.thread.is_alive()
        [paused] = _events(logs, "projections paused: store unavailable")
        assert "database is locked" in paused["error"]
        [resumed] = _events(logs, "projections resumed")
        assert resumed["attempts"] >= 2
        assert store.balances()["player:p1:cash:EUR"] == ("EUR", 15 * EUR)
        store.close()


def test_an_undecodable_event_stops_the_follower_with_one_logged_traceback(database_url):
    """A stored event that does not decode is a bug: no retries, one error with its
    traceback, the follower stopped and unhealthy, the views untouched."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        RawStore(database_url).set_state(wallet_id("p1", "EUR"), 1, b"not an event")
        store = open_projection_store(database_url)
        follower = ProjectionFollower(ProjectionRunner(ledger.log, store))
        with capture_logs() as logs:
            follower.start()
            follower.thread.join(timeout=WAIT_S)
        assert not follower.thread.is_alive()
        assert follower.state is FollowerState.FAILED and not follower.healthy
        [error] = [line for line in logs if line["log_level"] in ("error", "warning")]
        assert error["log_level"] == "error" and error["exc_info"] is True
        assert store.position() == 0
        store.close()
