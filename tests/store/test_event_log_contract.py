"""The event-log contract (`ledger.event_log.EventLog`): every implementation passes these,
on SQLite, PostgreSQL (single and partitioned) and the library's in-memory store (the
`event_log` fixture). Histories are written to streams of partition 0, so a partitioned log
reads them back in one partition, as a single log does."""

import threading
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from ledger.core import limits
from ledger.core.chain import encode_event, raw_digest
from ledger.core.events import CurrenciesRecorded, CurrencyScale
from ledger.core.partition import partition_of
from ledger.event_log import (
    AppendConflict,
    EventLog,
    LogRecord,
    RecordUndecodable,
    log_digests,
    log_events,
    log_pages,
    log_size,
)

AT = datetime(2026, 12, 5, tzinfo=UTC)


def event(
    stream: UUID, version: int, code: str = "EUR", *, at: datetime = AT
) -> CurrenciesRecorded:
    return CurrenciesRecorded(
        originator_id=stream,
        originator_version=version,
        recorded_at=at,
        currencies=(CurrencyScale(code, version),),
    )


def stream_ids(log: EventLog, count: int, partition: int = 0) -> list[UUID]:
    """`count` new stream ids whose events the log keeps in `partition`."""
    found: list[UUID] = []
    while len(found) < count:
        stream = uuid4()
        if partition_of(stream, log.partitions) == partition:
            found.append(stream)
    return found


def history(log: EventLog, streams: int, versions: int) -> list[CurrenciesRecorded]:
    """Appends `versions` events to each of `streams` new streams of partition 0, one append
    per version."""
    ids = stream_ids(log, streams)
    appended = []
    for version in range(1, versions + 1):
        batch = [event(stream, version) for stream in ids]
        log.append(batch)
        appended.extend(batch)
    return appended


def test_an_empty_log_has_nothing_to_read(event_log):
    """An empty log is at position 0, its pages are empty and an unknown stream reads empty."""
    assert event_log.heads() == [0] * event_log.partitions
    assert event_log.read_page(0, 10) == []
    assert list(log_pages(event_log, 0)) == []
    assert event_log.read_stream(uuid4()) == []
    assert event_log.first_events([uuid4(), uuid4()]) == []
    assert event_log.first_events([]) == []


def test_a_stream_reads_back_its_events_with_their_canonical_bytes(event_log):
    """read_stream returns each appended event, equal, with the bytes its digest is over."""
    stream = uuid4()
    events = [event(stream, 1), event(stream, 2), event(stream, 3)]
    event_log.append(events[:1])
    event_log.append(events[1:])
    read = event_log.read_stream(stream)
    assert [e for e, _ in read] == events
    assert [text for _, text in read] == [encode_event(e) for e in events]


def test_a_stream_reads_after_a_version_up_to_a_limit_either_way(event_log):
    """after, limit and newest_first select the same events the library's selects would."""
    stream = uuid4()
    event_log.append([event(stream, v) for v in range(1, 6)])

    def versions(**options) -> list[int]:
        return [e.originator_version for e, _ in event_log.read_stream(stream, **options)]

    assert versions(after=2) == [3, 4, 5]
    assert versions(after=2, limit=2) == [3, 4]
    assert versions(newest_first=True, limit=1) == [5]
    assert versions(after=5) == []


def test_an_append_at_a_taken_version_conflicts_and_writes_nothing(event_log):
    """A batch with one taken (stream, version) raises AppendConflict and none of it is
    stored: appends are all or nothing."""
    taken, other = uuid4(), uuid4()
    event_log.append([event(taken, 1)])
    with pytest.raises(AppendConflict):
        event_log.append([event(other, 1), event(taken, 1, "USD")])
    assert event_log.read_stream(other) == []
    assert [e.currencies[0].code for e, _ in event_log.read_stream(taken)] == ["EUR"]
    assert log_size(event_log) == 1


def test_racing_appends_of_one_version_let_exactly_one_through(event_log):
    """Writers racing for the same stream version: one succeeds, every other conflicts."""
    stream, outcomes, start = uuid4(), [], threading.Barrier(4)

    def write(code: str) -> None:
        start.wait(timeout=10)
        try:
            event_log.append([event(stream, 1, code)])
            outcomes.append("ok")
        except AppendConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(c,)) for c in ("EUR", "USD", "BTC", "ETH")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert len(event_log.read_stream(stream)) == 1


def test_first_events_are_each_streams_version_one_in_one_call(event_log):
    """first_events returns the version-1 event of each stream asked for that has one."""
    events = history(event_log, streams=3, versions=2)
    wanted = [e.originator_id for e in events[:3]]
    found = event_log.first_events([*wanted, uuid4()])
    assert sorted(found, key=lambda e: e.originator_id) == sorted(
        events[:3], key=lambda e: e.originator_id
    )


def test_first_events_cover_more_streams_than_one_statement_may_name(event_log):
    """More ids than SQLite's parameter limit per statement are all looked up."""
    events = [event(uuid4(), 1) for _ in range(1200)]
    event_log.append(events)
    found = event_log.first_events([e.originator_id for e in events])
    assert len(found) == len(events)


def test_the_log_reads_in_position_order_after_a_position(event_log):
    """read_page: positions ascend, `after` is exclusive, `limit` bounds the page, and each
    record opens and decodes to the event appended at that place."""
    events = history(event_log, streams=2, versions=3)
    page = event_log.read_page(0, 100)
    positions = [record.position for record in page]
    assert positions == sorted(positions) and len(set(positions)) == len(events)
    assert event_log.heads()[0] == positions[-1]
    decoded = [event_log.decode(r, event_log.plaintext(r)) for r in page]
    assert decoded == events
    assert [(r.stream_id, r.version) for r in page] == [
        (e.originator_id, e.originator_version) for e in events
    ]
    assert event_log.read_page(positions[1], 2) == page[2:4]
    assert event_log.read_page(positions[-1], 10) == []


def test_log_pages_cover_every_record_once_and_stop_at_until(event_log):
    """log_pages yields full pages then a short one, every record once; `until` cuts it."""
    history(event_log, streams=5, versions=5)
    pages = list(log_pages(event_log, 0, page_size=10))
    assert [len(page) for page in pages] == [10, 10, 5]
    positions = [r.position for page in pages for r in page]
    assert positions == [r.position for r in event_log.read_page(0, 100)]
    cut = positions[12]
    bounded = [
        r.position
        for page in log_pages(event_log, positions[2], until=cut, page_size=4)
        for r in page
    ]
    assert bounded == positions[3:13]


def test_log_pages_refuse_a_page_larger_than_the_limit(event_log):
    """Page sizes are bounded by limits.log_page_size_max, in one place."""
    with pytest.raises(AssertionError):
        next(log_pages(event_log, 0, page_size=limits.log_page_size_max + 1))


def test_log_events_and_digests_follow_the_log(event_log):
    """log_events yields (position, event) in order; log_digests the SHA-256 of each
    record's canonical bytes, up to the position asked for."""
    events = history(event_log, streams=3, versions=2)
    read = list(log_events(event_log))
    assert [e for _, e in read] == events
    last = read[-1][0]
    digests = list(log_digests(event_log, 0, read[3][0]))
    assert [digest for _, digest in digests] == [raw_digest(encode_event(e)) for e in events[:4]]
    assert list(log_digests(event_log, last, last)) == []


def test_a_record_holding_another_streams_event_does_not_decode(event_log):
    """decode checks the event against the record's stream and version: RecordUndecodable."""
    [stream] = stream_ids(event_log, 1)
    event_log.append([event(stream, 1)])
    [record] = event_log.read_page(0, 1)
    moved = LogRecord(record.position, uuid4(), record.version, record.topic, record.state)
    with pytest.raises(RecordUndecodable, match="holds event"):
        event_log.decode(moved, event_log.plaintext(moved))
    garbled = LogRecord(record.position, stream, 1, record.topic, b"{not json")
    with pytest.raises(RecordUndecodable):
        event_log.decode(garbled, event_log.plaintext(garbled))


def test_stored_rows_count_the_table_up_to_a_position(event_log):
    """Where the adapter can count rows (the SQL stores), it counts those up to the position
    and finds no misspelled stream id in what it wrote."""
    history(event_log, streams=2, versions=2)
    middle = event_log.read_page(0, 2)[-1].position
    others = [0] * (event_log.partitions - 1)
    counted = event_log.stored_rows([middle, *others])
    if counted is None:  # the in-memory store has no table to count
        assert event_log.read_page(0, 10)  # and still serves the log the audit reads
        return
    assert counted == (2, 0)
    assert event_log.stored_rows(event_log.heads()) == (4, 0)


def test_the_probe_answers_for_a_live_store(event_log):
    """open_probe gives a probe whose check returns while the store answers."""
    probe = event_log.open_probe()
    try:
        probe.check()
        probe.check()
    finally:
        probe.close()
