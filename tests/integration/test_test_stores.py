"""Test stores on real stores: marked only at creation, never confused with production
stores either way, their advanced time kept across restarts and shared by every process,
recorded on the events, and audited."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger.core import events as e
from ledger.core.chain import encode_event
from ledger.core.errors import InvalidArgument, NotATestStore
from ledger.core.outcomes import Outcome
from ledger.event_log import merged_records
from ledger.service.application import Ledger
from ledger.service.clock import CLOCK_STREAM_ID
from projections.audit import AuditReport, audit
from tests.builders import EUR, bet, deposit
from tests.integration.raw_store import RawStore

DAY = timedelta(days=1)


def _test_store(database_url: str) -> Ledger:
    return Ledger(database_url, store_kind="test")


def _audit(database_url: str) -> AuditReport:
    with Ledger(database_url, currency_scales="ignore", store_kind="either") as ledger:
        return audit(ledger.log, None)


def _problems(report: AuditReport) -> str:
    return "\n".join(str(finding) for finding in report.findings)


def _recorded_at(ledger: Ledger, key: str) -> datetime:
    found = ledger.transaction("client", key)
    assert found is not None
    return found[0].recorded_at


def test_an_empty_store_opened_as_a_test_store_is_marked_first(database_url):
    """The mark is the log's first event, written before the currencies' record."""
    with _test_store(database_url) as ledger:
        assert ledger.test_clock is not None
        first = next(merged_records(ledger.log))
        assert (first.stream_id, first.topic) == (CLOCK_STREAM_ID, "TestClockStarted")


def test_a_production_store_can_never_become_a_test_store(database_url):
    """A store created without the mark is refused as a test store, and nothing is written."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
    rows = RawStore(database_url).count()
    with pytest.raises(InvalidArgument, match="test_clock: the store was created without"):
        _test_store(database_url)
    assert RawStore(database_url).count() == rows
    with Ledger(database_url) as ledger, pytest.raises(NotATestStore):
        ledger.advance_clock(datetime.now(UTC) + DAY)


def test_a_test_store_is_never_opened_as_a_production_store(database_url):
    """A test store refuses the wall clock; tools open it with its own clock."""
    with _test_store(database_url) as ledger:
        target = ledger.advance_clock(datetime.now(UTC) + DAY).ledger_time
    with pytest.raises(InvalidArgument, match="test_clock: the store is a test store"):
        Ledger(database_url)
    with Ledger(database_url, currency_scales="ignore", store_kind="either") as tool:
        assert tool.test_clock is not None
        assert tool.clock() >= target


def test_events_are_recorded_at_the_ledger_time(database_url):
    """After an advance, a command's events and record carry the advanced time."""
    with _test_store(database_url) as ledger:
        target = datetime.now(UTC) + 3 * DAY
        reading = ledger.advance_clock(target)
        assert (reading.ledger_time, reading.advanced) == (target, True)
        ledger.execute(deposit("d1", 10 * EUR))
        assert target <= _recorded_at(ledger, "d1") < target + DAY
        events = ledger.wallet_events(ledger.transaction("client", "d1")[0].wallet_id)
        assert all(event.recorded_at >= target for event in events)


def test_an_advance_is_idempotent_by_its_target(database_url):
    """A resend of an advance, or a target in the past, moves nothing and answers the time."""
    with _test_store(database_url) as ledger:
        target = datetime.now(UTC) + DAY
        assert ledger.advance_clock(target).advanced
        again = ledger.advance_clock(target)
        assert not again.advanced and again.ledger_time >= target
        assert not ledger.advance_clock(None).advanced
        versions = ledger.log.read_stream(CLOCK_STREAM_ID)
        assert [type(event) for event, _ in versions] == [e.TestClockStarted, e.ClockAdvanced]


def test_time_does_not_go_back_across_a_restart(database_url):
    """A restarted test store resumes at or after its newest advance and newest event."""
    with _test_store(database_url) as ledger:
        ledger.advance_clock(datetime.now(UTC) + 2 * DAY)
        ledger.execute(deposit("d1", 10 * EUR))
        before = _recorded_at(ledger, "d1")
    with _test_store(database_url) as ledger:
        assert ledger.clock() >= before
        ledger.execute(deposit("d2", 10 * EUR))
        assert _recorded_at(ledger, "d2") >= before


def test_every_process_on_a_test_store_decides_on_its_newest_time(database_url):
    """An advance made by one process applies to another's next command without a restart."""
    with _test_store(database_url) as first, _test_store(database_url) as second:
        second.execute(deposit("d1", 10 * EUR))
        target = first.advance_clock(datetime.now(UTC) + 5 * DAY).ledger_time
        second.execute(deposit("d2", 10 * EUR))
        assert _recorded_at(second, "d2") >= target
        later = second.advance_clock(target + DAY)
        assert later.advanced and first.clock() < later.ledger_time  # not read yet
        first.execute(deposit("d3", 10 * EUR))
        assert _recorded_at(first, "d3") >= later.ledger_time


def test_the_audit_passes_on_a_test_store_after_advances(database_url):
    """Advances and the commands between them audit clean."""
    with _test_store(database_url) as ledger:
        for day in range(1, 4):
            ledger.advance_clock(ledger.clock() + day * DAY)
            ledger.execute(deposit(f"d{day}", 10 * EUR))
            assert ledger.execute(bet(f"b{day}", EUR, round_id=f"r{day}")).outcome is Outcome.OK
    report = _audit(database_url)
    assert report.passed, _problems(report)
    assert report.events > 10


def test_the_audit_catches_a_mark_slipped_into_a_production_store(database_url):
    """A TestClockStarted inserted after the log's start, to make a production store's clock
    advanceable, is a finding."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
    mark = e.TestClockStarted(
        originator_id=CLOCK_STREAM_ID, originator_version=1, recorded_at=datetime.now(UTC)
    )
    RawStore(database_url).insert_at(
        1000, CLOCK_STREAM_ID, 1, "TestClockStarted", encode_event(mark)
    )
    assert "a TestClockStarted after the log's first event" in _problems(_audit(database_url))


def test_the_audit_catches_a_clock_that_went_back(database_url):
    """An advance starting before the clock's previous time, or moving it backwards, and an
    advance on a store that is no test store, are findings."""
    with _test_store(database_url) as ledger:
        start = ledger.clock()
    raw, times = RawStore(database_url), (start - DAY, start - 2 * DAY, start)
    back = e.ClockAdvanced(
        originator_id=CLOCK_STREAM_ID,
        originator_version=2,
        recorded_at=times[1],
        advanced_from=times[0],
        wall_time=times[2],
    )
    raw.insert_at(1000, CLOCK_STREAM_ID, 2, "ClockAdvanced", encode_event(back))
    problems = _problems(_audit(database_url))
    assert "it went back" in problems
    assert "not forward within the bound" in problems
    raw.delete(CLOCK_STREAM_ID, 1)
    assert "a ClockAdvanced on a store that is not a test store" in _problems(_audit(database_url))
