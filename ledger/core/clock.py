"""A test store's clock, as pure arithmetic over its own stream. The shell (`ledger.service.clock`)
reads the wall clock and the store and passes both in; nothing here reads either.

The rules:

- A test store's ledger time is the wall clock plus an offset. The offset is zero when the
  store is created (`TestClockStarted`) and changes only by an advance (`ClockAdvanced`),
  which moves the ledger's time forward to a target and records the wall time it did so
  at: from then on the offset is the target minus that wall time.
- The ledger's time never goes back. An advance only moves it forward, and a reading is
  never earlier than the newest time the stream recorded nor than an earlier reading (the
  floor the shell keeps), even if the wall clock is set back.
- An advance is idempotent by its target: a target at or before the ledger's time moves
  nothing, so a resend of an advance already made, or a reading with no target, is an
  answer and not a second advance.
- Each advance and the total offset are bounded (`limits.clock_advance_s_max`,
  `limits.clock_offset_s_max`).
"""

from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.core.events import ClockAdvanced, TestClockStarted

ClockEvent = TestClockStarted | ClockAdvanced

_ADVANCE_MAX = timedelta(seconds=limits.clock_advance_s_max)
_OFFSET_MAX = timedelta(seconds=limits.clock_offset_s_max)
_NO_OFFSET = timedelta(0)


class ClockState(msgspec.Struct, frozen=True, kw_only=True):
    """Where a test store's clock stands after the newest event of its stream."""

    stream_id: UUID
    version: int
    offset: timedelta  # ledger time minus wall time; never negative
    floor: datetime  # the newest ledger time the stream recorded


def clock_problem(event: ClockEvent) -> str | None:
    """What makes a stored clock event impossible for the engine to have written, if
    anything: the shell checks stored events with it before trusting them."""
    if isinstance(event, TestClockStarted):
        if event.originator_version != 1:
            return f"a TestClockStarted at version {event.originator_version} of its stream"
        return None
    if event.originator_version < 2:
        return "a ClockAdvanced with no TestClockStarted before it"
    if not event.wall_time <= event.advanced_from < event.recorded_at:
        return (
            f"a ClockAdvanced from {event.advanced_from.isoformat()} to "
            f"{event.recorded_at.isoformat()} at wall time {event.wall_time.isoformat()}: "
            "not forward, or behind the wall clock"
        )
    return None


def clock_state(event: ClockEvent) -> ClockState:
    """The clock after its stream's newest event, which alone determines it."""
    assert clock_problem(event) is None, clock_problem(event)
    if isinstance(event, TestClockStarted):
        offset = _NO_OFFSET
    else:
        offset = event.recorded_at - event.wall_time
    assert offset >= _NO_OFFSET, offset
    return ClockState(
        stream_id=event.originator_id,
        version=event.originator_version,
        offset=offset,
        floor=event.recorded_at,
    )


def clock_reading(state: ClockState, floor: datetime, wall_now: datetime) -> datetime:
    """The ledger's time: the wall clock plus the offset, never before floor (the newest
    time already read) nor the newest time the stream recorded."""
    return max(floor, state.floor, wall_now + state.offset)


def decide_advance(
    state: ClockState, now: datetime, wall_now: datetime, target: datetime | None
) -> ClockAdvanced | None:
    """The advance of the clock from `now` (its reading) to target; None when the clock
    already reads target or later, or no target is given: nothing to move.

    Raises InvalidArgument naming `advance_to` past either bound."""
    assert target is None or target.utcoffset() is not None, "validated at the boundary"
    assert now >= wall_now, "the offset is never negative"
    if target is None or target <= now:
        return None
    if target - now > _ADVANCE_MAX:
        raise InvalidArgument(
            "advance_to",
            f"is more than {_ADVANCE_MAX.days} days after the "
            f"ledger's time {now.isoformat()}: advance in steps",
        )
    if target - wall_now > _OFFSET_MAX:
        raise InvalidArgument(
            "advance_to",
            "would put the ledger's clock more than "
            f"{_OFFSET_MAX.days} days ahead of the wall clock",
        )
    return ClockAdvanced(
        originator_id=state.stream_id,
        originator_version=state.version + 1,
        recorded_at=target,
        advanced_from=now,
        wall_time=wall_now,
    )


def clock_started(stream_id: UUID, wall_now: datetime) -> TestClockStarted:
    """The mark that makes a new, empty store a test store, its clock at the wall's time."""
    return TestClockStarted(originator_id=stream_id, originator_version=1, recorded_at=wall_now)
