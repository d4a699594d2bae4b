"""The projection runner: views equal an independent fold, pages apply exactly once, a
second runner cannot double-apply, a store's errors are the persistence family, and a
`kill -9` at any moment loses nothing."""

import random
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError

from ledger.cli.summary import PostingFold, stored_events
from ledger.core.partition import partition_of
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from projections.audit import audit
from projections.page import fold_page
from projections.runner import ProjectionRunner
from projections.stores import PositionMoved, open_projection_store
from tests.builders import EUR, bet, deposit
from tests.projections.conftest import make_history

KILL_WAIT_S = 30


def _runner(ledger: Ledger, database_url: str, page_size: int = 100):
    store = open_projection_store(database_url)
    return ProjectionRunner(ledger.log, store, page_size=page_size), store


def test_views_equal_an_independent_fold_of_the_log(history):
    """Account balances, trial balance and journal lines equal a plain fold of every event."""
    with Ledger(history) as ledger:
        runner, store = _runner(ledger, history)
        applied = runner.catch_up()
        fold = PostingFold()
        for event in stored_events(ledger):
            fold.add(event)
        expected = {
            account: balance
            for accounts in fold.balances.values()
            for account, balance in accounts.items()
        }
        assert {a: b for a, (_, b) in store.balances().items()} == expected
        assert all(debits == credits for debits, credits in store.trial_balance().values())
        assert applied == log_size(ledger.log) == store.position()
        assert runner.lag() == 0
        store.close()


def test_the_lag_is_reported_after_every_page_of_a_catch_up(database_url):
    """Catching up reports the lag shrinking page by page down to zero, and so does a
    follower behind the log, before it first finds nothing new."""
    with Ledger(database_url) as ledger:
        for n in range(3):
            ledger.execute(deposit(f"d{n}", 10 * EUR))
        lags: list[int] = []
        store = open_projection_store(database_url)
        runner = ProjectionRunner(ledger.log, store, page_size=2, on_lag=lags.append)
        runner.catch_up()
        total = log_size(ledger.log)
        _assert_shrinking_by_pages(lags, total, page_size=2)
        assert lags[-1] == lags[-2] == 0  # caught up, then measured once more
        ledger.execute(deposit("d3", 10 * EUR))
        ledger.execute(deposit("d4", 10 * EUR))
        behind = log_size(ledger.log) - total
        lags.clear()
        runner.follow(lambda: bool(lags) and lags[-1] == 0, poll_s=0)
        _assert_shrinking_by_pages(lags, behind, page_size=2)
        store.close()


def _assert_shrinking_by_pages(lags: list[int], start: int, page_size: int) -> None:
    """Each lag reported is below the one before by at most a page of each partition read
    (one partition here holds all but the store's own records), ending at 0."""
    assert lags and lags[-1] == 0, lags
    steps = [before - after for before, after in zip([start, *lags], lags, strict=False)]
    assert all(step >= 0 for step in steps) and sum(steps) == start, (start, lags)
    assert all(step <= 2 * page_size for step in steps), (start, lags)


def test_catch_up_resumes_where_it_stopped_and_follows_new_events(database_url):
    """New events after a catch-up are applied once by the next run, on top of the old."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        runner, store = _runner(ledger, database_url, page_size=1)
        runner.catch_up()
        ledger.execute(bet("b1", 4 * EUR))
        assert runner.lag() == 2  # the bet event and its idempotency record
        runner.catch_up()
        assert store.balances()["player:p1:cash:EUR"] == ("EUR", 6 * EUR)
        lines = store.statement("p1", "EUR", after=0, limit=10)
        assert [(line[2], line[5]) for line in lines] == [
            ("Deposited", 10 * EUR),
            ("BetPlaced", -4 * EUR),
        ]
        store.close()


def test_a_second_runner_cannot_apply_the_same_page_twice(database_url):
    """Two runners racing: the one whose position moved under it fails, nothing doubles."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", EUR))
        first, first_store = _runner(ledger, database_url)
        _, second_store = _runner(ledger, database_url)
        log = ledger.log
        partition = partition_of(wallet_id("p1", "EUR"), log.partitions)
        position = first_store.positions(log.partitions)[partition]
        first.run_page()
        records = log.read_page(position, 100, partition)
        events = [(r.position, log.decode(r, log.plaintext(r))) for r in records]
        page = fold_page(events, position + 1, partition)
        with pytest.raises(PositionMoved):
            second_store.apply(page, expected_position=position)
        assert first_store.balances()["player:p1:cash:EUR"] == ("EUR", EUR)
        first_store.close()
        second_store.close()


def test_driver_errors_leave_a_projection_store_as_the_persistence_family(database_url):
    """A projection store raises the library's persistence errors, as the event store does,
    so the status mapping and the follower see one family."""
    store = open_projection_store(database_url)
    store.close()
    with pytest.raises(PersistenceError) as caught:
        store.position()
    assert isinstance(caught.value.__cause__, (sqlite3.Error, psycopg.Error))


@pytest.mark.slow
def test_kill_9_at_any_moment_misses_nothing_and_doubles_nothing(database_url):
    """A runner killed with SIGKILL again and again, then resumed, ends exactly right."""
    kill_and_resume(database_url)


def kill_and_resume(database_url: str) -> None:
    """Kills `ledger project` at random moments until it is done, resumes it, and audits
    the views against the log."""
    make_history(database_url, players=60, rounds=8)
    command = [
        sys.executable,
        "-m",
        "ledger",
        "project",
        "--database-url",
        database_url,
        "--page-size",
        "5",
    ]
    rng = random.Random(4)
    kills = 0
    with Ledger(database_url) as ledger:
        total = log_size(ledger.log)
        store = open_projection_store(database_url)
        for _ in range(8):
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            kills += _kill_after_progress(process, store, rng)
            process.wait(timeout=30)
            if store.position() == total:
                break
        assert kills >= 1 and store.position() > 0
        subprocess.run(command, check=True, timeout=120, capture_output=True)
        report = audit(ledger.log, store)
        assert report.passed, [str(finding) for finding in report.findings]
        store.close()


def _kill_after_progress(process: subprocess.Popen, store, rng: random.Random) -> bool:
    """SIGKILLs the runner a random moment after it applied a page of this run, if it is
    still running: a fixed sleep let a fast machine finish before any kill."""
    start, deadline = store.position(), time.monotonic() + KILL_WAIT_S
    while process.poll() is None and store.position() == start and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    return True
