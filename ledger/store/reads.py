"""The read queries the library's recorders lack: many streams' first events in one query,
log pages, and row counts for the audit. `reads_for` picks the queries for a recorder.

The library's recorder reads one stream per call; a group commit of 64 commands would then
make 64 sequential round trips before its single write. Idempotency records are always the
first (and only) event of their stream, so one query for `version = 1` over all the group's
record ids does the same work in one round trip. `PostgresReads` and `SqliteReads` know the
library's table layout for its two SQL recorders; `RecorderReads` uses only the recorder's
public methods (one call per id), for any other recorder (the library's in-memory one).
"""

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ledger.event_log import LogRecord

SQLITE_PARAMETERS_MAX = 500

# The library's own policy for its PostgreSQL reads (its datastore turns psycopg's errors into
# these): a connection broken by a server restart is dropped from the pool and the read is
# tried again on a fresh one.
_retry_broken_connection = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


class RecorderReads:
    """The reads through the recorder's public methods: for a recorder of no known layout."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder

    def first_events(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        """The version-1 stored event of each stream in ids that has one."""
        return [event for i in ids for event in self.recorder.select_events(i, lte=1)]

    def page(self, after: int, limit: int) -> list[LogRecord]:
        """At most limit records of the log after position `after`, in order."""
        notes = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [
            LogRecord(n.id, _as_uuid(n.originator_id), n.originator_version, n.topic, n.state)
            for n in notes
        ]

    def stored_rows(self, position: int) -> tuple[int, int] | None:
        """Row counts for the audit (see EventLog.stored_rows); None: unknown here."""
        return None


class SqliteReads(RecorderReads):
    """The library's SQLite table: stream ids as 32 hex digits of text, positions as rowid."""

    recorder: SQLiteApplicationRecorder

    def first_events(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        if not ids:
            return []
        return [
            _stored(row)
            for row in self._rows_over_ids(
                (
                    "SELECT originator_id, originator_version, topic, state FROM {table} "
                    "WHERE originator_version = 1 AND originator_id IN ({ids})"
                ),
                ids,
            )
        ]

    def _rows_over_ids(self, template: str, ids: Sequence[UUID]) -> list:
        """The rows of template (placeholders `{table}`, `{ids}`) over ids, in statements
        small enough for SQLite's parameter limit."""
        rows, size, table = [], SQLITE_PARAMETERS_MAX, self.recorder.events_table_name
        with self.recorder.datastore.transaction(commit=False) as cursor:
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                marks = ", ".join("?" * len(chunk))
                cursor.execute(template.format(table=table, ids=marks), [i.hex for i in chunk])
                rows.extend(cursor.fetchall())
        return rows

    def page(self, after: int, limit: int) -> list[LogRecord]:
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state FROM "
            f"{self.recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, limit))
            rows = cursor.fetchall()
        return [LogRecord(n, UUID(o), v, t, s) for n, o, v, t, s in rows]

    def stored_rows(self, position: int) -> tuple[int, int] | None:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT count(*), coalesce(sum(originator_id != lower(originator_id) OR "
                f"length(originator_id) != 32), 0) FROM {self.recorder.events_table_name} "
                "WHERE rowid <= ?",
                (position,),
            )
            return tuple(cursor.fetchone())


class PostgresReads(RecorderReads):
    """The library's PostgreSQL table, read through binary cursors with plain tuples: no hex
    decoding of `bytea` and no per-row dictionaries, unlike the library's generic selects."""

    recorder: PostgresApplicationRecorder

    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        super().__init__(recorder)
        table = Identifier(recorder.datastore.schema, recorder.events_table_name)
        self.first_events_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(table=table)
        self.page_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table=table)
        self.stored_rows_statement = SQL(
            "SELECT count(*), 0 FROM {table} WHERE notification_id <= %s OR notification_id IS NULL"
        ).format(table=table)

    def first_events(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        if not ids:
            return []
        rows = _postgres_rows(self.recorder, self.first_events_statement, (list(ids),))
        return [
            StoredEvent(originator_id=o, originator_version=v, topic=t, state=s)
            for o, v, t, s in rows
        ]

    def page(self, after: int, limit: int) -> list[LogRecord]:
        rows = _postgres_rows(self.recorder, self.page_statement, (after, limit))
        return [LogRecord(n, o, v, t, s) for n, o, v, t, s in rows]

    def stored_rows(self, position: int) -> tuple[int, int] | None:
        return _postgres_rows(self.recorder, self.stored_rows_statement, (position,))[0]


def reads_for(recorder: ApplicationRecorder) -> RecorderReads:
    """The read queries for this recorder's table layout."""
    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresReads(recorder)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return SqliteReads(recorder)
    return RecorderReads(recorder)


@_retry_broken_connection
def _postgres_rows(recorder: PostgresApplicationRecorder, statement, params) -> list[tuple]:
    """The rows of one prepared query, through a binary cursor."""
    # Binary both ways: a text uuid[] parameter and hex-encoded bytea results cost more to
    # format and parse, on both sides of the connection, than the query itself.
    with (
        recorder.datastore.get_connection() as connection,
        connection.cursor(binary=True, row_factory=tuple_row) as cursor,
    ):
        cursor.execute(statement, params, prepare=True)
        return cursor.fetchall()


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _stored(row) -> StoredEvent:
    return StoredEvent(
        originator_id=_as_uuid(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
