"""Group commit against a real store: concurrent calls share one transaction, keep their
order, get their own results; a failed group fails exactly its calls and writes nothing."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.persistence import PersistenceError

from ledger.api.group_commit import GroupCommitter
from ledger.api.status import Overloaded
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from tests.builders import EUR, bet, deposit
from tests.conftest import SteppingClock
from tests.integration.raw_store import RawStore


@pytest.fixture
def ledger(database_url):
    with Ledger(database_url, clock=SteppingClock()) as instance:
        yield instance


def _committer(ledger: Ledger, groups: list[int], **options) -> GroupCommitter:
    settings = {"enabled": True, "window_ms": 20, "group_size_max": 1000, "queue_length_max": 2000}
    settings.update(options)
    executor = ThreadPoolExecutor(2)
    return GroupCommitter(ledger, executor, on_group=groups.append, **settings)


def test_concurrent_calls_share_a_group_and_keep_arrival_order(ledger):
    """Calls arriving within the window are one group; same-wallet commands apply in order."""
    groups: list[int] = []
    committer = _committer(ledger, groups)

    async def run():
        calls = [committer.submit([deposit("d", 3 * EUR)])]
        calls += [committer.submit([bet(f"b{n}", EUR, round_id=f"r{n}")]) for n in range(4)]
        return await asyncio.gather(*calls)

    results = asyncio.run(run())
    assert groups == [5]
    outcomes = [result.outcome for [result] in results]
    assert outcomes == [Outcome.OK] * 4 + [Outcome.INSUFFICIENT_FUNDS]


def test_a_call_of_a_groups_worth_goes_at_once_and_a_smaller_one_waits(ledger):
    """A call of window_skip_commands_min commands starts its group without waiting out the
    window; one command fewer still waits for company."""
    groups: list[int] = []
    committer = _committer(ledger, groups, window_ms=60_000, window_skip_commands_min=3)

    async def run():
        whole = [deposit(f"w{n}", EUR, player=f"w{n}") for n in range(3)]
        results = await asyncio.wait_for(committer.submit(whole), timeout=10)
        smaller = asyncio.ensure_future(committer.submit([deposit("s1", EUR), deposit("s2", EUR)]))
        _, waiting = await asyncio.wait([smaller], timeout=0.3)
        smaller.cancel()
        return results, waiting

    results, waiting = asyncio.run(run())
    assert [result.outcome for result in results] == [Outcome.OK] * 3
    assert groups == [3] and len(waiting) == 1


def test_a_failed_group_fails_exactly_its_calls_and_writes_nothing(ledger, database_url):
    """A store failure reaches every call of its group; the next group is unaffected."""
    raw = RawStore(database_url)
    raw.fail_inserts_containing("poison")
    rows = raw.count()
    groups: list[int] = []
    committer = _committer(ledger, groups)

    async def run():
        first = [
            committer.submit([deposit("ok-1", EUR)]),
            committer.submit([deposit("poison", EUR, player="p2")]),
        ]
        outcome = await asyncio.gather(*first, return_exceptions=True)
        raw.heal()
        later = await committer.submit([deposit("ok-2", EUR)])
        return outcome, later

    (first, second), later = asyncio.run(run())
    assert isinstance(first, PersistenceError) and isinstance(second, PersistenceError)
    assert later[0].outcome is Outcome.OK
    assert raw.count() == rows + 3  # WalletOpened, Deposited and the key record of ok-2 only
    assert ledger.balances("p1", "EUR").cash == EUR
    assert groups == [2, 1]


def test_disabled_group_commit_writes_each_call_alone(ledger):
    """With group commit off every call is its own transaction (the benchmark baseline)."""
    groups: list[int] = []
    committer = _committer(ledger, groups, enabled=False)

    async def run():
        return await asyncio.gather(*(committer.submit([deposit(f"d{n}", EUR)]) for n in range(3)))

    asyncio.run(run())
    assert groups == [1, 1, 1]


def test_a_full_queue_refuses_more_calls(ledger):
    """Past the queue bound a call is refused as overload instead of waiting without end."""
    committer = _committer(ledger, [], group_size_max=2, queue_length_max=2)

    async def run():
        waiting = committer.submit([deposit("d1", EUR), deposit("d2", EUR)])
        task = asyncio.ensure_future(waiting)
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await committer.submit([deposit("d3", EUR)])
        return await task

    assert [r.outcome for r in asyncio.run(run())] == [Outcome.OK, Outcome.OK]
