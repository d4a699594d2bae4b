"""The event-log port: everything the ledger asks of its event store, and nothing else.

The service, the API, the projections and the tools see the store only through `EventLog`:
appending events under optimistic concurrency, reading one stream, reading many streams'
first events, reading the log in position order, and its newest position. The adapters in
`ledger.store` are the only code that speaks SQL to the event tables; `tests/store/` holds
the contract every adapter passes.

Positions are the log's total order (1, 2, ...; PostgreSQL's may have gaps). A record read
from the log is handed over still encrypted and compressed (`LogRecord.state`): the audit
reports a record it cannot read and goes on, so opening it is a separate step
(`EventLog.plaintext`, `EventLog.decode`) that fails for that record alone.
"""

from collections.abc import Iterator, Sequence
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
    """One record of the log, as stored: `state` is the encrypted, compressed event."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes


class StoreProbe(Protocol):
    def check(self) -> None:
        """Returns if the store answered; raises the driver's error if it did not."""

    def close(self) -> None: ...


class EventLog(Protocol):
    """The event store, as the ledger uses it."""

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
        newest first), at most `limit`; RecordUndecodable for a record that does not open."""

    def first_events(self, stream_ids: Sequence[UUID]) -> list[StoredEventBase]:
        """The version-1 event of each stream in stream_ids that has one, in one round trip
        where the store allows it; in no particular order."""

    def read_page(self, after: int, limit: int) -> list[LogRecord]:
        """At most `limit` records of the log after position `after`, in position order."""

    def plaintext(self, record: LogRecord) -> bytes:
        """The record's canonical event bytes (what its digest is computed over)."""

    def decode(self, record: LogRecord, plaintext: bytes) -> StoredEventBase:
        """The record's event, upcast to its class's current version."""

    def max_position(self) -> int:
        """The log's newest position; 0 for an empty log."""

    def stored_rows(self, position: int) -> tuple[int, int] | None:
        """How many rows the event table holds up to position (or with none), and how many
        of them spell their stream id otherwise than the adapter writes it; None where the
        adapter cannot tell (the audit then skips the check)."""

    def open_probe(self) -> StoreProbe:
        """A cheap health check of the store, on a connection of its own."""

    def close(self) -> None: ...


def log_pages(
    log: EventLog,
    after: int,
    *,
    until: int | None = None,
    page_size: int = limits.log_page_size,
) -> Iterator[list[LogRecord]]:
    """The log after position `after` (and up to `until`), a page at a time, until a page
    comes back short. Every loop over the log pages through here, so page sizes are set in
    one place (`limits.log_page_size`, at most `limits.log_page_size_max`)."""
    assert 0 < page_size <= limits.log_page_size_max, page_size
    while True:
        page = log.read_page(after, page_size)
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


def log_events(
    log: EventLog, after: int = 0, *, page_size: int = limits.log_page_size
) -> Iterator[tuple[int, StoredEventBase]]:
    """(position, event) of every event after `after`, in order, read in pages."""
    for page in log_pages(log, after, page_size=page_size):
        for record in page:
            yield record.position, log.decode(record, log.plaintext(record))


def log_digests(log: EventLog, after: int, until: int) -> Iterator[tuple[LogRecord, bytes]]:
    """(record, SHA-256 of its plaintext) of each record after `after` up to `until`: what
    checkpoints are computed over."""
    for page in log_pages(log, after, until=until):
        for record in page:
            yield record, raw_digest(log.plaintext(record))
