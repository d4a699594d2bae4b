"""The event log on the eventsourcing library's application recorders (SQLite, PostgreSQL,
or the library's in-memory one), with the ledger's msgspec mapper.

The library builds the recorder, cipher and compressor from its environment (the keys
`ledger.store.database` derives from a database URL), creates the tables, and maps its
drivers' errors into one family (`ledger.store.outages` tells which are outages). Events go
straight to the recorder: `Application.save` would check every event against a runtime
Protocol, and `EventStore.put` build a recording per event that nothing here reads.
"""

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    MapperDeserialisationError,
)

from ledger.core.events import StoredEventBase
from ledger.event_log import AppendConflict, LogRecord, RecordUndecodable, StoreProbe
from ledger.store.mapper import MsgspecMapper, RecordOpener
from ledger.store.probe import open_store_probe
from ledger.store.reads import reads_for


class LedgerStore(Application[UUID]):
    """The library's application: it builds the recorder and our msgspec mapper."""

    name = "ledger"

    def construct_mapper(self) -> MsgspecMapper:
        return MsgspecMapper(cipher=self.factory.cipher(), compressor=self.factory.compressor())


# The library names its events table after the application.
SINGLE_EVENTS_TABLE = f"{LedgerStore.name}_events"


class RecorderEventLog(RecordOpener):
    """`EventLog` over one of the library's application recorders: one partition."""

    partitions = 1
    distributed = False

    def __init__(self, environment: dict[str, str]) -> None:
        """Opens (and creates, if the environment says so) the store `environment` names."""
        self.environment = environment
        self.application = LedgerStore(env=environment)
        recorder, mapper = self.application.recorder, self.application.mapper
        assert isinstance(recorder, ApplicationRecorder), type(recorder)
        assert isinstance(mapper, MsgspecMapper), type(mapper)
        self.recorder: ApplicationRecorder = recorder
        self.mapper: MsgspecMapper = mapper
        self.reads = reads_for(recorder)

    def append(self, events: Sequence[StoredEventBase]) -> None:
        to_stored = self.mapper.to_stored_event
        try:
            self.recorder.insert_events([to_stored(event) for event in events])
        except IntegrityError as error:
            raise AppendConflict(str(error)) from error

    def read_stream(
        self,
        stream_id: UUID,
        *,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[tuple[StoredEventBase, bytes]]:
        stored = self.recorder.select_events(
            stream_id, gt=after or None, desc=newest_first, limit=limit
        )
        plaintext, decode, read = self.mapper.plaintext, self.mapper.decode, []
        try:
            for record in stored:
                text = plaintext(record)
                read.append((decode(record, text), text))
        except MapperDeserialisationError as error:
            raise RecordUndecodable(str(error)) from error
        return read

    def first_events(
        self, stream_ids: Sequence[UUID], near: Sequence[UUID] = ()
    ) -> list[StoredEventBase]:
        to_event = self.mapper.to_domain_event
        try:
            return [to_event(stored) for stored in self.reads.first_events(stream_ids)]
        except MapperDeserialisationError as error:
            raise RecordUndecodable(str(error)) from error

    def read_page(self, after: int, limit: int, partition: int = 0) -> list[LogRecord]:
        assert partition == 0, partition
        return self.reads.page(after, limit)

    def heads(self) -> list[int]:
        return [self.recorder.max_notification_id() or 0]

    def stored_rows(self, heads: Sequence[int]) -> tuple[int, int] | None:
        (position,) = heads
        return self.reads.stored_rows(position)

    def open_probe(self) -> StoreProbe:
        # The SQL recorders name their table; the in-memory one has none to read.
        table = getattr(self.recorder, "events_table_name", "")
        return open_store_probe(self.environment, table)

    def close(self) -> None:
        self.application.close()
