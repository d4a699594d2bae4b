"""Optimistic concurrency: two processes, and many threads, writing the same wallet never
lose or double an update, and a key shared between writers is applied exactly once; the
event-loop driver of an attempt retries conflicts as the threaded one does."""

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from ledger.core import events as e
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from tests.builders import EUR, bet, deposit
from tests.conftest import run_on_loop
from tests.integration.workers import hammer_one_wallet

pytestmark = pytest.mark.slow


def _deposited_keys(ledger: Ledger) -> list[str]:
    events = []
    after = 0
    while page := ledger.wallet_events(wallet_id("p1", "EUR"), after_version=after):
        events.extend(page)
        after = page[-1].originator_version
    return [event.key for event in events if isinstance(event, e.Deposited)]


def test_two_processes_on_one_wallet_lose_and_double_nothing(database_url):
    """Concurrent writers in two processes end with the exact balance and one credit per key."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("seed", 1000 * EUR))
    shared = [f"shared-{n}" for n in range(20)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        runs = [
            pool.submit(hammer_one_wallet, database_url, "a", shared),
            pool.submit(hammer_one_wallet, database_url, "b", list(reversed(shared))),
        ]
        outcomes = [run.result(timeout=240) for run in runs]
    assert sum(o.get("OK", 0) for o in outcomes) == 30 + 30 + 20 + 40
    assert sum(o.get("DUPLICATE", 0) for o in outcomes) == 20
    with Ledger(database_url) as ledger:
        assert ledger.balances("p1", "EUR").cash == (1000 + 80 - 40) * EUR
        keys = _deposited_keys(ledger)
    assert len(keys) == len(set(keys)) == 81


def test_many_threads_on_one_wallet_apply_every_command_once(database_url):
    """Sixteen threads sharing one Ledger on a hot wallet end with the exact balance."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("seed", 100 * EUR))
        results: list[Outcome] = []

        def play(thread: int) -> None:
            for n in range(10):
                command = bet(f"t{thread}-b{n}", EUR, round_id=f"t{thread}-r{n}")
                results.append(ledger.execute(command).outcome)

        threads = [threading.Thread(target=play, args=(t,)) for t in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert results.count(Outcome.OK) == 100
        assert results.count(Outcome.INSUFFICIENT_FUNDS) == 60
        assert ledger.balances("p1", "EUR").cash == 0


def test_the_loop_driven_attempt_retries_a_conflict_with_another_writer(database_url):
    """A stale cached wallet loses the version race once, is re-read, and the bet lands."""
    with Ledger(database_url) as first, Ledger(database_url) as second:
        first.execute(deposit("seed", 10 * EUR))  # first now caches the wallet at this version
        second.execute(bet("b1", 2 * EUR, round_id="r1"))  # and another writer moves it on
        [result] = run_on_loop(first, [bet("b2", 3 * EUR, round_id="r2")])
        assert result.outcome is Outcome.OK and result.balances.cash == 5 * EUR
        assert second.balances("p1", "EUR").cash == 5 * EUR


def test_the_loop_driven_attempt_decides_as_the_threaded_one(database_url):
    """The same commands give the same outcomes and balances on either driver."""

    def commands(first: str, second: str):
        """The same batch for other players, under keys of their own."""
        return [
            deposit(f"{first}-d1", 5 * EUR, player=first),
            bet(f"{first}-b1", 2 * EUR, player=first),
            bet(f"{first}-b2", 9 * EUR, round_id="r2", player=first),
            deposit(f"{second}-d2", EUR, player=second),
            deposit(f"{first}-d1", 5 * EUR, player=first),
        ]

    with Ledger(database_url) as ledger:
        threaded = ledger.execute_validated(commands("p1", "p2"))
        looped = run_on_loop(ledger, commands("p3", "p4"))
    assert [(r.outcome, r.balances) for r in looped] == [(r.outcome, r.balances) for r in threaded]
    assert [r.outcome for r in looped][2:] == [
        Outcome.INSUFFICIENT_FUNDS,
        Outcome.OK,
        Outcome.DUPLICATE,
    ]


def test_the_loop_driven_attempt_refuses_to_wait_for_another_writer(database_url):
    """A wallet lock held elsewhere is an error on the event loop, never a stalled loop."""
    with Ledger(database_url) as ledger:
        taken, release = threading.Event(), threading.Event()

        def other_writer() -> None:  # holds p1's lock; were the loop to wait, it would wait 5 s
            with ledger._locked({wallet_id("p1", "EUR")}):
                taken.set()
                release.wait(5)

        holder = threading.Thread(target=other_writer)
        holder.start()
        taken.wait(5)
        with pytest.raises(RuntimeError, match="only one"):
            run_on_loop(ledger, [deposit("d1", EUR)])
        release.set()
        holder.join(10)
        assert run_on_loop(ledger, [deposit("d1", EUR)])[0].outcome is Outcome.OK
