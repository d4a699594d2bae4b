"""A test store's clock: the wall clock plus a recorded offset, moved only forward, within
its bounds, and never read back in time (`ledger.core.clock`, `ledger.service.clock.TestClock`)."""

import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.core import limits
from ledger.core.clock import clock_reading, clock_started, clock_state, decide_advance
from ledger.core.errors import InvalidArgument
from ledger.service.clock import TestClock as LedgerTestClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STREAM = uuid4()
HOUR = timedelta(hours=1)
ADVANCE_MAX = timedelta(seconds=limits.clock_advance_s_max)


class WallClock:
    """A wall clock the test sets, forward or back."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _started(wall_now: datetime = START):
    return clock_state(clock_started(STREAM, wall_now))


def test_a_new_test_clock_reads_the_wall_clock():
    """Created, the clock has no offset: its time is the wall's, and it moves with it."""
    state = _started()
    assert (state.version, state.offset, state.floor) == (1, timedelta(0), START)
    assert clock_reading(state, START, START + HOUR) == START + HOUR


def test_an_advance_moves_to_its_target_and_keeps_the_offset_after():
    """An advance records its target as the new time and the offset to the wall clock."""
    state = _started()
    event = decide_advance(state, START, START, START + 24 * HOUR)
    assert event is not None
    assert (event.originator_version, event.recorded_at) == (2, START + 24 * HOUR)
    assert (event.advanced_from, event.wall_time) == (START, START)
    after = clock_state(event)
    assert after.offset == 24 * HOUR
    assert clock_reading(after, after.floor, START + HOUR) == START + 25 * HOUR


@pytest.mark.parametrize("target", [None, START - HOUR, START])
def test_a_target_at_or_before_the_clock_moves_nothing(target):
    """A reading (no target), a past target or a resend of an advance made is no advance."""
    assert decide_advance(_started(), START, START, target) is None


def test_one_advance_is_bounded():
    """An advance of exactly the bound is allowed; a microsecond more is refused by name."""
    assert decide_advance(_started(), START, START, START + ADVANCE_MAX) is not None
    with pytest.raises(InvalidArgument, match="advance_to: is more than 366 days"):
        decide_advance(_started(), START, START, START + ADVANCE_MAX + timedelta(microseconds=1))


def test_the_offset_to_the_wall_clock_is_bounded():
    """Advances in steps cannot take the clock further than the bound ahead of the wall."""
    offset_max = timedelta(seconds=limits.clock_offset_s_max)
    state = _started()
    now = START + offset_max - HOUR  # as after many advances
    with pytest.raises(InvalidArgument, match="ahead of the wall clock"):
        decide_advance(state, now, START, now + 2 * HOUR)
    assert decide_advance(state, now, START, now + HOUR) is not None


def test_the_clock_never_reads_back_when_the_wall_clock_is_set_back():
    """A wall clock set back leaves the ledger's time where it was until the wall catches up."""
    wall = WallClock()
    clock = LedgerTestClock(_started(), wall)
    first = clock()
    wall.now = START - HOUR
    assert clock() == first
    wall.now = START + HOUR
    assert clock() == START + HOUR


def test_a_restarted_clock_starts_no_earlier_than_its_newest_advance():
    """A clock resumed from an advance reads at least the advance's target, whatever the
    wall clock says."""
    event = decide_advance(_started(), START, START, START + 24 * HOUR)
    assert event is not None
    clock = LedgerTestClock(clock_state(event), WallClock(START - 48 * HOUR))
    assert clock() == START + 24 * HOUR


def test_the_clock_adopts_only_newer_states():
    """An advance another process made is adopted; an older state never moves it back."""
    clock = LedgerTestClock(_started(), WallClock())
    event = decide_advance(_started(), START, START, START + 24 * HOUR)
    assert event is not None
    clock.adopt(clock_state(event))
    assert clock() == START + 24 * HOUR
    clock.adopt(_started())
    clock.adopt(None)
    assert clock() == START + 24 * HOUR


def test_readings_from_many_threads_never_go_back():
    """Readings taken concurrently with adoptions, each thread's in order, never decrease."""
    wall = WallClock()
    clock = LedgerTestClock(_started(), wall)
    failures = []

    def read() -> None:
        last = clock()
        for _ in range(2000):
            now = clock()
            if now < last:
                failures.append((last, now))
            last = now

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    state = _started()
    for hours in range(1, 50):
        event = decide_advance(state, clock(), wall.now, START + hours * HOUR)
        if event is not None:
            state = clock_state(event)
            clock.adopt(state)
    for thread in threads:
        thread.join()
    assert not failures
