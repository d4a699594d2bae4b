"""The event-log port: everything the ledger asks of its event store, and nothing else.

The service, the API, the projections and the tools see the store only through `EventLog`:
appending events under optimistic concurrency, reading one stream, reading many streams'
first events, reading the log in position order, and its newest position. The adapters in
`ledger.store` are the only code that speaks SQL to the event tables; `tests/store/` holds
the contract every adapter passes.

A log has one or more partitions (`EventLog.partitions`; `ledger.core.partition` says which
holds a stream). Positions order each partition (1, 2, ...; the single-partition PostgreSQL
recorder's may have gaps); there is no order across partitions, by design: readers follow
each partition, and a reader that wants one sequence merges them (`merged_records`, in the
order documented there), which is not causal. A record read
from the log is handed over still encrypted and compressed (`LogRecord.state`): the audit
reports a record it cannot read and goes on, so opening it is a separate step
(`EventLog.plaintext`, `EventLog.decode`) that fails for that record alone.
"""

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from ledger.core import limits
from ledger.core.chain import raw_digest
from ledger.core.events import StoredEventBase


class AppendConflict(Exception):
    """An appended event's (stream, version) is taken: another writer got there first.
    Nothing of the append was written."""


class RecordUndecodable(Exception):
    """A stored record cannot be decrypted, decompressed or decoded into its event, or holds
    an event of another stream or version than the record's."""


class LogRecord(msgspec.Struct, frozen=True, gc=False):
    """One record of the log, as stored: `state` is the encrypted, compressed event.
    `recorded_at` is the event's ledger time where the store keeps it beside the event
    (the partitioned store, which merges partitions by it), else None."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes
    partition: int = 0
    recorded_at: datetime | None = None


class StoreProbe(Protocol):
    def check(self) -> None:
        """Returns if the store answered; raises the driver's error if it did not."""

    def close(self) -> None: ...


class EventLog(Protocol):
    """The event store, as the ledger uses it."""

    partitions: int  # 1 for a log of one partition
    # Whether partitions live on several nodes (Citus). Then a transaction over several
    # partitions is a distributed one, so the service writes each partition's commands in a
    # transaction of its own; and an idempotency record written for a second wallet in
    # another partition is not refused by the store, so followers flag it.
    distributed: bool

    def append(self, events: Sequence[StoredEventBase]) -> None:
        """Appends events in one transaction, each at its `originator_version`, which must be
        its stream's next; AppendConflict (and nothing written) if any version is taken."""

    def read_stream(
        self,
        stream_id: UUID,
        *,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[tuple[StoredEventBase, bytes]]:
        """(event, plaintext) of a stream's events after version `after`, oldest first (or
        newest first), at most `limit`; RecordUndecodable for a record that does not open.
        For a stream in its own partition: an idempotency record is read by first_events."""

    def first_events(
        self, stream_ids: Sequence[UUID], near: Sequence[UUID] = ()
    ) -> list[StoredEventBase]:
        """The version-1 event of each stream in stream_ids that has one, in one round trip
        where the store allows it; in no particular order.

        Args:
            near: streams in whose partitions the events are looked for (an idempotency record
                lives in its wallet's) on a distributed log, where reading every shard would
                cost more than the write; a record in another partition (a key reused for
                another player) is then not found, and the followers flag it. Ignored on one
                node, which reads every partition."""

    def read_page(self, after: int, limit: int, partition: int = 0) -> list[LogRecord]:
        """At most `limit` records of a partition after position `after`, in position order."""

    def plaintext(self, record: LogRecord) -> bytes:
        """The record's canonical event bytes (what its digest is computed over)."""

    def decode(self, record: LogRecord, plaintext: bytes) -> StoredEventBase:
        """The record's event, upcast to its class's current version."""

    def heads(self) -> list[int]:
        """Each partition's newest position (0 for an empty one), by partition, in one read."""

    def stored_rows(self, heads: Sequence[int]) -> tuple[int, int] | None:
        """How many rows the event table holds at or before each partition's position in
        heads (or with none), and how many of them spell their stream id otherwise than the
        adapter writes it; None where the adapter cannot tell (the audit skips the check)."""

    def open_probe(self) -> StoreProbe:
        """A cheap health check of the store, on a connection of its own."""

    def close(self) -> None: ...


class CopyTarget(EventLog, Protocol):
    """A log that takes records copied from another as they are stored (`ledger migrate`)."""

    def copy_in(self, records: Sequence[tuple[LogRecord, StoredEventBase]]) -> None:
        """Appends records read from another log, as stored there (the same topic and
        state bytes, so the same digests), each with its decoded event, in one transaction;
        AppendConflict (and nothing written) if a (stream, version) is taken."""

    def mark_copied(self, events: int, source_head: int) -> None:
        """Records that the copy, of `events` records up to the old log's position
        `source_head`, is complete and proved: a store whose URL names no layout is then
        opened with this log, as long as the old log holds nothing past that position."""


def log_pages(
    log: EventLog,
    after: int,
    *,
    partition: int = 0,
    until: int | None = None,
    page_size: int = limits.log_page_size,
) -> Iterator[list[LogRecord]]:
    """A partition after position `after` (and up to `until`), a page at a time, until a
    page comes back short. Every loop over the log pages through here, so page sizes are set
    in one place (`limits.log_page_size`, at most `limits.log_page_size_max`)."""
    assert 0 < page_size <= limits.log_page_size_max, page_size
    while True:
        page = log.read_page(after, page_size, partition)
        if until is not None and page and page[-1].position > until:
            page = [record for record in page if record.position <= until]
            if page:
                yield page
            return
        if page:
            yield page
        if len(page) < page_size:
            return
        after = page[-1].position


def log_size(log: EventLog) -> int:
    """The sum of the partitions' newest positions: the number of events in a dense log,
    0 for an empty one; what lags and progress bars count against."""
    return sum(log.heads())


def new_records(log: EventLog, seen: Sequence[int]) -> Iterator[LogRecord]:
    """The records after each partition's position in `seen` (one per partition), partition
    by partition, each in position order; a partition whose head has not moved is not read."""
    assert len(seen) == log.partitions, (len(seen), log.partitions)
    for partition, head in enumerate(log.heads()):
        if head > seen[partition]:
            yield from _records(log, seen[partition], partition, limits.log_page_size)


def merged_records(log: EventLog, after: int = 0) -> Iterator[LogRecord]:
    """Every record after position `after` of every partition, as one sequence: each
    partition in position order, and between partitions the record with the earliest
    `(recorded_at, partition, position)` first. Ledger times come from several processes'
    clocks, so this order is not causal; it is only the same every time it is read."""
    if log.partitions == 1:
        for page in log_pages(log, after):
            yield from page
        return
    heads = log.heads()
    partitions = [
        _records(log, after, partition, limits.log_merge_page_size)
        for partition, head in enumerate(heads)
        if head > after
    ]
    yield from heapq.merge(*partitions, key=_merge_key)


def _records(log: EventLog, after: int, partition: int, page_size: int) -> Iterator[LogRecord]:
    for page in log_pages(log, after, partition=partition, page_size=page_size):
        yield from page


def _merge_key(record: LogRecord) -> tuple[datetime | None, int, int]:
    return record.recorded_at, record.partition, record.position


def log_events(log: EventLog) -> Iterator[tuple[int, StoredEventBase]]:
    """(position, event) of every event, in `merged_records` order."""
    for record in merged_records(log):
        yield record.position, log.decode(record, log.plaintext(record))


def log_digests(
    log: EventLog, after: int, until: int, partition: int = 0
) -> Iterator[tuple[LogRecord, bytes]]:
    """(record, SHA-256 of its plaintext) of each record of a partition after `after` up to
    `until`: what checkpoints are computed over."""
    for page in log_pages(log, after, partition=partition, until=until):
        for record in page:
            yield record, raw_digest(log.plaintext(record))
