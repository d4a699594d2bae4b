"""Reading many streams in one query: idempotency records, log pages, stream heads.

The library's recorder reads one stream per call; a group commit of 64 commands would then
make 64 sequential round trips before its single write. Idempotency records are always the
first (and only) event of their stream, so one query for `version = 1` over all the group's
record ids does the same work in one round trip. This module knows the
library's table layout for its SQLite and PostgreSQL recorders, and falls back to one call
per id otherwise.
"""

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder, InterfaceError, Notification, OperationalError, StoredEvent,
)  # fmt: skip
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

SQLITE_PARAMETERS_MAX = 500

# The library's own policy for its PostgreSQL reads (its datastore turns psycopg's errors into
# these): a connection broken by a server restart is dropped from the pool and the read is
# tried again on a fresh one.
_retry_broken_connection = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


def select_first_events(recorder: AggregateRecorder, ids: Sequence[UUID]) -> list[StoredEvent]:
    """The version-1 stored event of each stream in ids that has one."""
    if not ids:
        return []
    if isinstance(recorder, PostgresAggregateRecorder):
        return _postgres(recorder, ids)
    if isinstance(recorder, SQLiteAggregateRecorder):
        return [_stored(row) for row in _sqlite_rows(recorder, (
            "SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_version = 1 AND originator_id IN ({ids})"
        ), ids)]  # fmt: skip
    return [event for i in ids for event in recorder.select_events(i, lte=1)]


def _postgres(recorder: PostgresAggregateRecorder, ids: Sequence[UUID]) -> list[StoredEvent]:
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {table} "
        "WHERE originator_id = ANY(%s) AND originator_version = 1"
    ).format(table=_events_table(recorder))
    return [
        StoredEvent(originator_id=o, originator_version=v, topic=t, state=s)
        for o, v, t, s in _postgres_rows(recorder, statement, (list(ids),))
    ]


@_retry_broken_connection
def _postgres_rows(recorder: PostgresAggregateRecorder, statement, params) -> list[tuple]:
    """The rows of one prepared query, through a binary cursor."""
    # Binary both ways: a text uuid[] parameter and hex-encoded bytea results cost more to
    # format and parse, on both sides of the connection, than the query itself.
    with (
        recorder.datastore.get_connection() as connection,
        connection.cursor(binary=True, row_factory=tuple_row) as cursor,
    ):
        cursor.execute(statement, params, prepare=True)
        return cursor.fetchall()


def _sqlite_rows(recorder: SQLiteAggregateRecorder, template: str, ids: Sequence[UUID]) -> list:
    """The rows of template (placeholders `{table}`, `{ids}`) over ids, in statements small
    enough for SQLite's parameter limit."""
    rows, size = [], SQLITE_PARAMETERS_MAX
    with recorder.datastore.transaction(commit=False) as cursor:
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            marks = ", ".join("?" * len(chunk))
            cursor.execute(template.format(table=recorder.events_table_name, ids=marks),
                           [i.hex for i in chunk])  # fmt: skip
            rows.extend(cursor.fetchall())
    return rows


def _events_table(recorder: PostgresAggregateRecorder) -> Identifier:
    """The recorder's events table, qualified with its schema."""
    return Identifier(recorder.datastore.schema, recorder.events_table_name)


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _stored(row) -> StoredEvent:
    return StoredEvent(
        originator_id=_as_uuid(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def count_rows(recorder, position: int) -> tuple[int, int] | None:
    """How many rows the event table holds up to a log position (and with none), and how
    many of them store a stream id spelled otherwise than the recorder writes it (SQLite
    keeps ids as text, 32 lower-case hex digits, and compares them as text); None for other
    recorders. Rows written after `position` (a live store) are not counted."""
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(
            "SELECT count(*), 0 FROM {table} "
            "WHERE notification_id <= %s OR notification_id IS NULL"
        ).format(table=_events_table(recorder))
        return _postgres_rows(recorder, statement, (position,))[0]
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT count(*), coalesce(sum(originator_id != lower(originator_id) OR "
                f"length(originator_id) != 32), 0) FROM {recorder.events_table_name} "
                "WHERE rowid <= ?", (position,),
            )  # fmt: skip
            return tuple(cursor.fetchone())
    return None


def select_notification_page(recorder, start: int, limit: int) -> list[Notification]:
    """A page of the notification log from `start` (inclusive), read for bulk replay.

    On PostgreSQL a binary cursor with plain tuples skips the hex decoding of `bytea` and the
    per-row dictionaries of the library's generic select; elsewhere the library's own.
    """
    if not isinstance(recorder, PostgresApplicationRecorder):
        return list(recorder.select_notifications(start=start, limit=limit))
    return _postgres_notifications(recorder, start, limit)


def _postgres_notifications(recorder, start: int, limit: int) -> list[Notification]:
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {table} WHERE notification_id >= %s ORDER BY notification_id LIMIT %s"
    ).format(table=_events_table(recorder))
    return [
        Notification(id=n, originator_id=o, originator_version=v, topic=t, state=s)
        for n, o, v, t, s in _postgres_rows(recorder, statement, (start, limit))
    ]
