"""The ledger's clock: the wall clock on a production store, a `TestClock` on a test store.

The rules this module keeps (the arithmetic is `ledger.core.clock`):

- A store is a test store if and only if its clock stream holds a `TestClockStarted`, which
  is written only when a store is opened as a test store (`ledger serve --test-clock`) while
  it is still empty. A store created without it can never become one: opened as a test
  store, a store that holds events and no mark is refused.
- A test store is never opened as a production store either: its events carry the test
  clock's times, and deciding on the wall clock after them would move time backwards.
  Tools that only read or sign the log (audit, projections, export, checkpoints) open
  either kind and use the store's own clock.
- The clock's offset lives in the store, as events of its own stream, so a restart resumes
  the advanced time, and several processes serving one test store agree: each attempt
  reads the stream's head first (`Ledger._attempt_steps`), and an advance is appended at
  the next version of the stream, so two advances racing cannot both apply to one state.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import uuid5

import structlog

from ledger.core import limits
from ledger.core.clock import (
    ClockState,
    clock_problem,
    clock_reading,
    clock_started,
    clock_state,
    decide_advance,
)
from ledger.core.errors import ChainBroken, ConcurrencyExhausted, InvalidArgument
from ledger.core.events import ClockAdvanced, TestClockStarted
from ledger.event_log import AppendConflict, EventLog, RecordUndecodable
from ledger.service.wallets import LEDGER_NAMESPACE

CLOCK_STREAM_ID = uuid5(LEDGER_NAMESPACE, "clock")
# How a Ledger opens a store: "production" refuses a test store and keeps the wall clock,
# "test" creates or resumes a test store and refuses a production one, "either" takes the
# store as it is (for tools) and creates nothing.
StoreKind = Literal["production", "test", "either"]
WallClock = Callable[[], datetime]
_log = structlog.get_logger("ledger.clock")

PRODUCTION_STORE = (
    "the store was created without --test-clock (it holds events but no test clock): a "
    "production store's clock can never be advanced; start a new, empty store with --test-clock"
)
TEST_STORE = (
    "the store is a test store (created by `ledger serve --test-clock`): its history is at "
    "the test clock's times, so it is only served with --test-clock"
)


@dataclass(frozen=True)
class ClockReading:
    """An AdvanceClock answer: the ledger's time after the call, and whether it moved it."""

    ledger_time: datetime
    advanced: bool


class TestClock:
    """A test store's clock: the wall clock plus the recorded offset, never going back.

    Read from several threads (the event loop's writer, the store pool, the checkpointer),
    so the state and the floor change under a lock."""

    __test__ = False  # not a pytest test class, wherever it is imported

    def __init__(self, state: ClockState, wall: WallClock) -> None:
        self.wall = wall
        self._state = state
        self._floor = state.floor
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The ledger's time now."""
        return self.sample()[1]

    def sample(self) -> tuple[ClockState, datetime, datetime]:
        """The state, the ledger's time and the wall time it was read at, taken together."""
        with self._lock:
            wall_now = self.wall()
            self._floor = clock_reading(self._state, self._floor, wall_now)
            return self._state, self._floor, wall_now

    def adopt(self, state: ClockState | None) -> None:
        """Takes the stream's newest state if it is newer than the one held (an advance made
        by this process, or by another serving the same store)."""
        if state is None:
            return
        with self._lock:
            if state.version > self._state.version:
                self._state = state
                self._floor = max(self._floor, state.floor)


def newest_clock_state(log: EventLog) -> ClockState | None:
    """The clock after its stream's newest event; None on a production store. ChainBroken
    if that event is one the engine cannot have written (it fails closed, as on a wallet)."""
    stored = log.read_stream(CLOCK_STREAM_ID, newest_first=True, limit=1)
    if not stored:
        return None
    event = stored[0][0]
    if not isinstance(event, TestClockStarted | ClockAdvanced):
        raise ChainBroken(f"the test clock's stream holds a {type(event).__name__}")
    problem = clock_problem(event)
    if problem is not None:
        raise ChainBroken(f"the test clock's stream is broken: {problem}")
    return clock_state(event)


def open_clock(log: EventLog, kind: StoreKind, wall: WallClock) -> WallClock | TestClock:
    """The clock a store of this kind decides on; creates the test mark on an empty store
    opened as a test store. InvalidArgument (field `test_clock`) when the store is of the
    other kind."""
    try:
        state = newest_clock_state(log)
    except (ChainBroken, RecordUndecodable) as error:
        if kind != "either":
            raise
        # A tool (the audit above all) must still open a store whose clock was tampered
        # with, to report it; it then stamps what it writes with the wall clock.
        _log.error("the test clock cannot be read; using the wall clock", error=str(error))
        return wall
    if state is None and kind == "test":
        state = _start_test_clock(log, wall)
    if state is None:
        return wall
    if kind == "production":
        raise InvalidArgument("test_clock", TEST_STORE)
    return TestClock(state, wall)


def _start_test_clock(log: EventLog, wall: WallClock) -> ClockState:
    if any(log.heads()):
        raise InvalidArgument("test_clock", PRODUCTION_STORE)
    started = clock_started(CLOCK_STREAM_ID, wall())
    try:
        log.append([started])
    except AppendConflict:  # another process created it first: take theirs
        state = newest_clock_state(log)
        assert state is not None
        return state
    return clock_state(started)


def advance_clock(clock: TestClock, log: EventLog, target: datetime | None) -> ClockReading:
    """Moves the test clock forward to target (None: only reads it), from the stream's
    newest state; an advance racing another is decided again on the state it lost to."""
    for _ in range(limits.concurrency_retry_count_max):
        clock.adopt(newest_clock_state(log))
        state, now, wall_now = clock.sample()
        event = decide_advance(state, now, wall_now, target)
        if event is None:
            return ClockReading(now, advanced=False)
        try:
            log.append([event])
        except AppendConflict:
            continue
        clock.adopt(clock_state(event))
        _log.info("test clock advanced", advanced_from=str(now), ledger_time=str(target))
        return ClockReading(event.recorded_at, advanced=True)
    raise ConcurrencyExhausted("the test clock kept being advanced by others; resend")
