"""Optimistic concurrency: two processes, and many threads, writing the same wallet never
lose or double an update, and a key shared between writers is applied exactly once."""

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from ledger.application import Ledger
from ledger.core import events as e
from ledger.core.outcomes import Outcome
from ledger.wallets import wallet_id
from tests.builders import EUR, bet, deposit
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
