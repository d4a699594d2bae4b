"""The library's PostgreSQL application recorder, with a cheaper way to pass the rows.

The library inserts a batch as one `unnest(%s::stored_event[])` over its composite type.
psycopg dumps an array of composites element by element in Python, hex-encoding every
event's bytes on the way: a fifth of the server's time under load (py-spy, see
benchmarks/README.md). Four parallel arrays of plain types (uuid, bigint, text, bytea) go
through psycopg's C dumpers instead, in binary format (`%b`): the text format escapes every
element with a regular expression and makes the server parse it back, which cost as much
again as everything else in the insert.

Three smaller costs, each a few per cent of a batch's write (py-spy on
benchmarks/engine_inprocess.py), are also gone: the lock and notify statements are composed
to bytes once instead of on every insert, and the insert returns no notification ids,
because the ledger never uses them (readers follow the notification log), so no row comes
back to be built into a dict. Everything else is the library's: the table lock that keeps
notification ids in commit order, the notify, the pipeline, the error mapping.
"""

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier


class ArrayInsertPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.insert_events_statement = (
            SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            )
            .format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
            )
            .as_bytes(None)
        )
        self.lock_table_statements = [s.as_bytes(None) for s in self.lock_table_statements]
        self.notify_statement = (
            SQL("NOTIFY {0}").format(Identifier(self.channel_name)).as_bytes(None)
        )

    def _notify_channel(self, curs) -> None:
        curs.execute(self.notify_statement)

    def _insert_stored_events(self, curs, stored_events: Sequence[StoredEvent], **_: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_statement,
            (
                [event.originator_id for event in stored_events],
                [event.originator_version for event in stored_events],
                [event.topic for event in stored_events],
                [event.state for event in stored_events],
            ),
        )

    def _fetch_ids_after_insert_events(self, curs, stored_events, **_: Any) -> None:
        """The insert returns no ids: nothing in the ledger reads them."""
        assert curs.statusmessage == f"INSERT 0 {len(stored_events)}", curs.statusmessage
