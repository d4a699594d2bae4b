"""Several groups in flight (ledger/api/group_commit.py), against a stand-in ledger that holds
each group until the test releases it: which calls may go, and that none overtakes another
on a wallet or a key."""

import asyncio
import contextvars
from types import SimpleNamespace

import pytest

from ledger.api.group_commit import GroupCommitter
from ledger.api.status import Overloaded
from tests.builders import EUR, bet, deposit, rollback


class _GatedLedger:
    """Records each group's keys as it starts and answers only once released (or fails)."""

    def __init__(self, partitions: int = 256) -> None:
        self.log = SimpleNamespace(partitions=partitions)
        self.started: list[list[str]] = []
        self.gates: list[asyncio.Future] = []

    async def execute_validated_async(self, commands, run):
        self.started.append([command.idempotency_key for command in commands])
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        await gate
        return [command.idempotency_key for command in commands]

    def release(self, index: int, error: Exception | None = None) -> None:
        if error is None:
            self.gates[index].set_result(None)
        else:
            self.gates[index].set_exception(error)


def _committer(ledger, **options) -> GroupCommitter:
    settings = {"window_ms": 0, "group_size_max": 1000, "queue_length_max": 2000}
    settings.update({"groups_in_flight_max": 2, "overlap_commands_min": 1, **options})
    return GroupCommitter(ledger, None, enabled=True, **settings)


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _submit(committer, *commands) -> asyncio.Task:
    return asyncio.ensure_future(committer.submit(list(commands)))


def test_a_call_on_a_wallet_in_flight_waits_and_nothing_overtakes_it():
    """Disjoint calls go beside a group in flight; calls sharing a wallet keep arrival order."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger)
        a = _submit(committer, deposit("a", EUR, player="p1"))
        await _settle()
        b = _submit(committer, deposit("b", EUR, player="p1"))  # p1 is in flight: waits
        c = _submit(committer, deposit("c", EUR, player="p3"))
        e = _submit(committer, deposit("e1", EUR, player="p2"), deposit("e2", EUR, player="p1"))
        f = _submit(committer, deposit("f", EUR, player="p2"))  # behind e on p2
        g = _submit(committer, deposit("g", EUR, player="p4"))
        await _settle()
        assert ledger.started == [["a"], ["c", "g"]]
        ledger.release(0)
        await _settle()
        assert ledger.started[2] == ["b", "e1", "e2", "f"]
        ledger.release(1)
        ledger.release(2)
        return await asyncio.gather(a, b, c, e, f, g)

    assert asyncio.run(run()) == [["a"], ["b"], ["c"], ["e1", "e2"], ["f"], ["g"]]


def test_a_key_or_a_rollback_target_in_flight_orders_calls_like_a_wallet():
    """Calls sharing an idempotency key, or a rollback and its target, keep arrival order."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger, groups_in_flight_max=3)
        first = _submit(committer, bet("k", EUR, player="p1"))
        await _settle()
        same_key = _submit(committer, bet("k", EUR, player="p2"))
        undo = _submit(committer, rollback("undo", "k", player="p3"))
        await _settle()
        assert ledger.started == [["k"]]
        ledger.release(0)
        await _settle()
        assert ledger.started[1:] == [["k", "undo"]]
        ledger.release(1)
        return await asyncio.gather(first, same_key, undo)

    asyncio.run(run())


def test_no_more_groups_than_the_limit_are_in_flight():
    """Past the limit, even a call on a free wallet waits for a slot."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger)
        calls = [_submit(committer, deposit(f"d{n}", EUR, player=f"p{n}")) for n in range(2)]
        await _settle()
        assert ledger.started == [["d0", "d1"]]  # one group took both; one slot is free
        calls.append(_submit(committer, deposit("d2", EUR, player="p2")))
        await _settle()
        calls.append(_submit(committer, deposit("d3", EUR, player="p3")))
        calls.append(_submit(committer, deposit("d4", EUR, player="p4")))
        await _settle()
        assert ledger.started == [["d0", "d1"], ["d2"]]  # d3 and d4 wait for a slot
        ledger.release(1)
        await _settle()
        assert ledger.started[2] == ["d3", "d4"]
        ledger.release(0)
        ledger.release(2)
        await asyncio.gather(*calls)
        await committer.drain()
        assert committer._dispatcher is None

    asyncio.run(run())


def test_a_group_beside_others_starts_only_once_enough_commands_wait():
    """Beside a group in flight, a call too small to pay for a group of its own waits for a
    group to end; enough commands waiting start one at once."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger, groups_in_flight_max=3, overlap_commands_min=3)
        calls = [_submit(committer, deposit("a", EUR, player="p1"))]
        await _settle()
        calls.append(_submit(committer, deposit("b", EUR, player="p2")))
        await _settle()
        assert ledger.started == [["a"]]  # one command waiting: too few to start beside
        calls.append(
            _submit(committer, deposit("c", EUR, player="p3"), deposit("d", EUR, player="p5"))
        )
        await _settle()
        assert ledger.started == [["a"], ["b", "c", "d"]]
        calls.append(_submit(committer, deposit("e", EUR, player="p4")))
        await _settle()
        ledger.release(0)  # a group ended: whatever may go goes, however little
        await _settle()
        assert ledger.started[2] == ["e"]
        ledger.release(1)
        ledger.release(2)
        await asyncio.gather(*calls)

    asyncio.run(run())


def test_a_failed_group_fails_only_its_calls_while_another_is_in_flight():
    """A group's error reaches its calls only; the group beside it and those after succeed."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger)
        doomed = _submit(committer, deposit("x", EUR, player="p1"))
        await _settle()
        beside = _submit(committer, deposit("y", EUR, player="p2"))
        after = _submit(committer, deposit("z", EUR, player="p1"))
        await _settle()
        ledger.release(0, ConnectionError("store gone"))
        await _settle()
        with pytest.raises(ConnectionError):
            await doomed
        assert ledger.started == [["x"], ["y"], ["z"]]
        ledger.release(1)
        ledger.release(2)
        return await beside, await after

    assert asyncio.run(run()) == (["y"], ["z"])


def test_the_queue_bound_counts_waiting_calls_not_those_in_flight():
    """Commands in flight leave the queue; waiting ones past the bound are refused."""
    ledger = _GatedLedger()

    async def run():
        committer = _committer(ledger, group_size_max=2, queue_length_max=2)
        held = [_submit(committer, deposit("a1", EUR), deposit("a2", EUR))]
        await _settle()
        held.append(_submit(committer, deposit("b1", EUR), deposit("b2", EUR)))  # same wallet
        await _settle()
        with pytest.raises(Overloaded):
            committer.check_room(1)
        ledger.release(0)
        await _settle()
        committer.check_room(2)
        ledger.release(1)
        await asyncio.gather(*held)

    asyncio.run(run())


def test_a_log_of_one_partition_writes_one_group_at_a_time():
    """SQLite and the single PostgreSQL log serialise appends: the limit drops to one."""
    assert _committer(_GatedLedger(partitions=1), groups_in_flight_max=4).groups_in_flight_max == 1
    assert _committer(_GatedLedger(), groups_in_flight_max=4).groups_in_flight_max == 4


_CALLER = contextvars.ContextVar("caller", default=None)


class _ContextLedger(_GatedLedger):
    """Records, per group, what the caller context variable holds while it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str | None] = []

    async def execute_validated_async(self, commands, run):
        self.seen.append(_CALLER.get())
        return [command.idempotency_key for command in commands]


def test_a_group_carries_no_calls_context():
    """The group that serves several calls is written outside the context of the call that
    started it, so no call's request id (or trace) is stamped on the others' work."""
    ledger = _ContextLedger()

    async def call(committer, key: str):
        _CALLER.set(key)
        return await committer.submit([deposit(key, EUR, player=key)])

    async def run():
        committer = _committer(ledger, window_ms=1)
        return await asyncio.gather(*(call(committer, f"k{n}") for n in range(3)))

    assert asyncio.run(run()) == [["k0"], ["k1"], ["k2"]]
    assert ledger.seen == [None]
