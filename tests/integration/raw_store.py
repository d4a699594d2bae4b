"""Direct SQL on the event table, bypassing the engine: for tampering and fault injection."""

import functools
import sqlite3
from collections.abc import Callable
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
import psycopg

from ledger.core.partition import PARTITION_COUNT, partition_of
from ledger.store.database import LAYOUT_CITUS, LAYOUT_PARTITIONED, LOG_LAYOUT, store_environment
from ledger.store.layout import resolved

# The partitioned log's names for the single PostgreSQL log's table and columns.
_PARTITIONED_NAMES = (
    ("ledger_events", "ledger_log"),
    ("originator_id", "stream_id"),
    ("originator_version", "version"),
    ("notification_id", "position"),
)


class RawStore:
    """The event table of a test store, reached with plain SQL."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.is_sqlite = database_url.startswith("sqlite")

    @functools.cached_property
    def is_partitioned(self) -> bool:
        """Whether the store's layout, as the engine opens it, is a partitioned log."""
        if self.is_sqlite:
            return False
        layout = resolved(store_environment(self.url))[LOG_LAYOUT]
        return layout in (LAYOUT_PARTITIONED, LAYOUT_CITUS)

    def _run(self, sqlite_sql: str, pg_sql: str, params: tuple = ()) -> list[tuple]:
        # The SQLite recorder keeps UUIDs as 32 hex digits, PostgreSQL as native uuid.
        params = tuple(p.hex if self.is_sqlite and isinstance(p, UUID) else p for p in params)
        if self.is_sqlite:
            with sqlite3.connect(urlsplit(self.url).path[1:]) as conn:
                return conn.execute(sqlite_sql, params).fetchall()
        base, _, query = self.url.partition("?schema=")
        if self.is_partitioned:
            for single, partitioned in _PARTITIONED_NAMES:
                pg_sql = pg_sql.replace(single, partitioned)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{query.split("&")[0]}"')
            cursor = conn.execute(pg_sql, params)
            return cursor.fetchall() if cursor.description else []

    def state(self, originator_id: UUID, version: int) -> bytes:
        rows = self._run(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            "SELECT state FROM ledger_events WHERE originator_id = %s AND originator_version = %s",
            (originator_id, version),
        )
        assert len(rows) == 1, rows
        return bytes(rows[0][0])

    def set_state(self, originator_id: UUID, version: int, state: bytes) -> None:
        self._run(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            "UPDATE ledger_events SET state = %s "
            "WHERE originator_id = %s AND originator_version = %s",
            (state, originator_id, version),
        )

    def edit(self, originator_id: UUID, version: int, change: Callable[[dict], None]) -> None:
        """Rewrites a stored event's JSON in place (change edits the decoded document),
        keeping its field order."""
        document = msgspec.json.decode(self.state(originator_id, version))
        change(document)
        self.set_state(originator_id, version, msgspec.json.encode(document))

    def delete(self, originator_id: UUID, version: int) -> None:
        self._run(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            "DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = %s",
            (originator_id, version),
        )

    def insert_at(
        self, position: int, originator_id: UUID, version: int, topic: str, state: bytes
    ) -> None:
        """Inserts a row at an explicit log position (notification id, or SQLite rowid; in
        the partitioned log, in its stream's partition, stamped now)."""
        if self.is_partitioned:
            partition = partition_of(originator_id, PARTITION_COUNT)
            self._run(
                "",
                "INSERT INTO ledger_log (partition_id, position, stream_id, version, "
                "recorded_at, topic, state) VALUES (%s, %s, %s, %s, now(), %s, %s)",
                (partition, position, originator_id, version, topic, state),
            )
            return
        self._run(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            "INSERT INTO ledger_events (notification_id, originator_id, originator_version, "
            "topic, state) VALUES (%s, %s, %s, %s, %s)",
            (position, originator_id, version, topic, state),
        )

    def respell(self, originator_id: UUID, version: int) -> None:
        """SQLite only: stores one row's stream id in upper case, which SQLite compares as
        another id."""
        self._run(
            "UPDATE stored_events SET originator_id = upper(originator_id) "
            "WHERE originator_id = ? AND originator_version = ?",
            "",
            (originator_id, version),
        )

    def count(self) -> int:
        rows = self._run("SELECT COUNT(*) FROM stored_events", "SELECT COUNT(*) FROM ledger_events")
        return int(rows[0][0])

    def fail_inserts_containing(self, marker: str) -> None:
        """Installs a trigger that makes any insert whose state contains marker fail."""
        if self.is_sqlite:
            # Not RAISE(ABORT), which SQLite reports as a constraint violation: this must
            # look like a store fault, so the trigger writes to a table dropped after.
            with sqlite3.connect(urlsplit(self.url).path[1:]) as conn:
                conn.executescript(
                    "CREATE TABLE poison_sink (x);"
                    "CREATE TRIGGER poison BEFORE INSERT ON stored_events "
                    f"WHEN instr(NEW.state, '{marker}') > 0 "
                    "BEGIN INSERT INTO poison_sink VALUES (1); END;"
                    "DROP TABLE poison_sink;"
                )
            return
        self._run(
            "",
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
            f"IF position('{marker}'::bytea in NEW.state) > 0 THEN "
            "RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER poison BEFORE INSERT ON ledger_events "
            "FOR EACH ROW EXECUTE FUNCTION poison();",
        )

    def heal(self) -> None:
        """Removes the fault trigger again."""
        self._run("DROP TRIGGER poison", "DROP TRIGGER poison ON ledger_events")
