"""The partitioned event log on PostgreSQL: P logs in one table, no table lock, no global
sequence (the design is `docs/scaling.md`).

Every row carries its `partition_id` (`ledger.core.partition`) and a position dense within
its partition. An append bumps each partition's head row (`ledger_log_heads`) by the number
of events it writes there and numbers them from the old head, all in the transaction that
inserts them: the head row's lock orders the partition's writers, so positions follow
commit order and a reader of a partition never passes a gap that fills in later. Writers of
different partitions never wait for each other. Heads are locked in partition order first
(`SELECT … ORDER BY … FOR UPDATE`), so two appends over the same partitions cannot deadlock;
locks, bumps and inserts are one statement (`_APPEND`), one round trip.

The same primary key as the single log, `(stream_id, version)`, refuses a second writer of
a wallet version or of an idempotency key, whichever partitions the two writers chose: on one
node the same key sent for two players is still a CONFLICT. A distributed engine cannot
enforce a key without the distribution column (see `docs/scaling.md`).

Connections come from the eventsourcing library's PostgreSQL datastore (its pool, its error
family, its retry of a connection a server restart broke); events are mapped by the
ledger's msgspec mapper with the library's cipher and compressor, as in the single log.
"""

import weakref
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    MapperDeserialisationError,
    OperationalError,
)
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from ledger.core.events import StoredEventBase
from ledger.core.partition import PARTITION_COUNT, partition_of, partition_stream
from ledger.event_log import AppendConflict, LogRecord, RecordUndecodable, StoreProbe
from ledger.store.citus import CitusStatements, by_partition, is_remote_unique_violation
from ledger.store.database import LAYOUT_CITUS, LOG_LAYOUT
from ledger.store.mapper import MsgspecMapper, RecordOpener
from ledger.store.probe import open_store_probe

EVENTS_TABLE = "ledger_log"
HEADS_TABLE = "ledger_log_heads"
# A row per finished `ledger migrate` into these tables, with the old log's head it copied up
# to: a URL naming no layout then opens them, not the single log beside them, unless that
# log was written past the copy (`ledger.store.layout`).
COPIED_TABLE = "ledger_log_copied"

# A connection broken by a server restart is dropped from the pool and the statement tried
# again on a fresh one: the library's own policy for its recorders.
_retry_broken_connection = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)

# On one node the key (stream_id, version) spans partitions; Citus refuses a unique key
# without the distribution column, so there a record id can repeat across partitions.
_CREATE_EVENTS = """CREATE TABLE IF NOT EXISTS {events} (
        partition_id smallint NOT NULL,
        position bigint NOT NULL,
        stream_id uuid NOT NULL,
        version bigint NOT NULL,
        recorded_at timestamptz NOT NULL,
        topic text NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY ({key}))"""
_CREATE_REST = (
    "CREATE UNIQUE INDEX IF NOT EXISTS {position_index} ON {events} (partition_id, position)",
    """CREATE TABLE IF NOT EXISTS {heads} (
        partition_id smallint PRIMARY KEY,
        last_position bigint NOT NULL CHECK (last_position >= 0)
    ) WITH (fillfactor = 50)""",
)
# The count is fixed when the heads are first created; later opens find them.
_CREATE_HEADS = (
    "INSERT INTO {heads} SELECT p, 0 FROM generate_series(0, {last}) AS p ON CONFLICT DO NOTHING"
)
# One statement, so one round trip and no transaction block: in autocommit it is its own
# transaction, all or nothing. Heads are locked in partition order before any is bumped, so
# two appends over the same partitions cannot deadlock: `locked` sorts, then locks, and the
# UPDATE is gated on it by a qual that names no row, which PostgreSQL evaluates once (a
# one-time filter) before the UPDATE's plan yields its first row. The heads' RETURNING is
# the only way a main statement can see a data-modifying WITH's work; row_number numbers a
# partition's events in the order they were given. The partition array is read three times
# but sent once: psycopg gives a repeated named placeholder one `$n`.
_APPEND = """WITH locked AS (
        SELECT partition_id FROM {heads} WHERE partition_id = ANY(%(partitions)b::smallint[])
        ORDER BY partition_id FOR UPDATE),
    counts AS (
        SELECT p, count(*) AS n FROM unnest(%(partitions)b::smallint[]) AS p GROUP BY p),
    bumped AS (
        UPDATE {heads} AS h SET last_position = h.last_position + counts.n FROM counts
        WHERE h.partition_id = counts.p AND (SELECT count(*) FROM locked) > 0
        RETURNING h.partition_id, h.last_position - counts.n AS base)
    INSERT INTO {events} (partition_id, position, stream_id, version, recorded_at, topic, state)
    SELECT e.p, bumped.base + row_number() OVER (PARTITION BY e.p ORDER BY e.ord),
        e.stream_id, e.version, e.recorded_at, e.topic, e.state
    FROM unnest(%(partitions)b::smallint[], %(streams)b::uuid[], %(versions)b::bigint[],
        %(recorded)b::timestamptz[], %(topics)b::text[], %(states)b::bytea[])
        WITH ORDINALITY AS e(p, stream_id, version, recorded_at, topic, state, ord)
    JOIN bumped ON bumped.partition_id = e.p"""
_MARK_COPIED = (
    """CREATE TABLE IF NOT EXISTS {copied} (
        copied_at timestamptz NOT NULL DEFAULT now(), events bigint NOT NULL,
        source_head bigint NOT NULL)""",
    "INSERT INTO {copied} (events, source_head) VALUES (%s, %s)",
)
_APPEND_COLUMNS = ("partitions", "streams", "versions", "recorded", "topics", "states")
_READ_STREAM = (
    "SELECT version, topic, state FROM {events} WHERE partition_id = %s AND stream_id = %s "
    "AND version > %s ORDER BY version {direction} LIMIT %s"
)
_FIRST_EVENTS = (
    "SELECT stream_id, version, topic, state FROM {events} "
    "WHERE stream_id = ANY(%s) AND version = 1"
)
_FIRST_EVENTS_NEAR = _FIRST_EVENTS + " AND partition_id = ANY(%s::smallint[])"
_PAGE = (
    "SELECT position, stream_id, version, topic, state, partition_id, recorded_at "
    "FROM {events} WHERE partition_id = %s AND position > %s ORDER BY position LIMIT %s"
)
_HEADS = "SELECT partition_id, last_position FROM {heads} ORDER BY partition_id"
# An array subscript, not a join: Citus pushes it down to every shard as it is.
_STORED_ROWS = "SELECT count(*), 0 FROM {events} WHERE position <= (%s::bigint[])[partition_id + 1]"


class PartitionedEventLog(RecordOpener):
    """`EventLog` over the partitioned tables on PostgreSQL."""

    def __init__(self, environment: dict[str, str]) -> None:
        """Opens (and creates, if the environment says so) the partitioned tables."""
        self.environment = environment
        factory = PostgresFactory(Environment("ledger", environment))
        self.datastore: PostgresDatastore = factory.datastore
        self.mapper = MsgspecMapper(cipher=factory.cipher(), compressor=factory.compressor())
        self.citus = environment.get(LOG_LAYOUT) == LAYOUT_CITUS
        lock_timeout_s = int(environment.get("POSTGRES_LOCK_TIMEOUT") or 0)
        self.statements = _Statements(self.datastore.schema, lock_timeout_s, citus=self.citus)
        self._lock_timed: weakref.WeakSet = weakref.WeakSet()  # connections whose session has it
        if factory.env_create_table():
            self._create_tables()
        # One node's primary key (stream_id, version) spans partitions; Citus's cannot.
        self.distributed = self.citus
        self.partitions = len(self.heads())
        assert self.partitions > 0, "the heads table holds no partition"

    def _create_tables(self) -> None:
        statements = self.statements
        if statements.citus is None:
            with self.datastore.transaction(commit=True) as cursor:
                for statement in statements.create:
                    cursor.execute(statement)
            return
        # Citus distributes a table outside a transaction block, statement by statement.
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            for statement in statements.create[:-1]:
                cursor.execute(statement)
            statements.citus.distribute(cursor)
            cursor.execute(statements.create[-1])

    @_retry_broken_connection
    def append(self, events: Sequence[StoredEventBase]) -> None:
        if not events:
            return
        # The topic and sealed state of each event, without building the library's
        # StoredEvent (a frozen dataclass) only to take them back out.
        topics = [self.mapper.schemas.topic(event) for event in events]
        states = [self.mapper.sealed(event) for event in events]
        self._insert(self._columns(events, topics, states))

    def copy_in(self, records: Sequence[tuple[LogRecord, StoredEventBase]]) -> None:
        """Appends records read from another log, as stored there (the same topic and state
        bytes, so the same digests), each with its decoded event: `ledger migrate`'s copy.
        The cipher and compressor must be the ones the records were written with."""
        events = [event for _, event in records]
        topics, states = [r.topic for r, _ in records], [r.state for r, _ in records]
        self._insert(self._columns(events, topics, states))

    def mark_copied(self, events: int, source_head: int) -> None:
        """Records that a copy of `events` records, up to the old log's position
        `source_head`, is complete and proved."""
        create, insert = self.statements.mark_copied
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(create)
            cursor.execute(insert, (events, source_head))

    def _columns(
        self, events: Sequence[StoredEventBase], topics: list[str], states: list[bytes]
    ) -> tuple[list, ...]:
        """The insert's columns: each event's partition, stream, version and time, beside
        its stored topic and state (a decoded record's event is that record's stream and
        version: the mapper checks it)."""
        return (
            _partitions(events, self.partitions),
            [event.originator_id for event in events],
            [event.originator_version for event in events],
            [event.recorded_at for event in events],
            topics,
            states,
        )

    def _insert(self, columns: tuple[list, ...]) -> None:
        """One statement, its own transaction: one round trip; AppendConflict (and nothing
        written) if a (stream, version) is taken."""
        try:
            self._insert_rows(columns)
        except IntegrityError as error:
            raise AppendConflict(str(error)) from error
        except InternalError as error:
            if not (self.citus and is_remote_unique_violation(error)):
                raise
            raise AppendConflict(str(error)) from error

    def _insert_rows(self, columns: tuple[list, ...]) -> None:
        if self.statements.citus is not None:
            self._insert_by_partition(columns)
            return
        with self.datastore.get_connection() as connection:
            self._time_out_locks(connection)
            cursor = connection.cursor()
            cursor.execute(self.statements.append, _append_params(columns), prepare=True)
            assert cursor.rowcount == len(columns[0]), cursor.rowcount

    def _time_out_locks(self, connection) -> None:
        """Sets the lock timeout for the connection's session, the first time it appends:
        an append is one statement outside a transaction block, where `SET LOCAL` would not
        hold."""
        if connection not in self._lock_timed:
            connection.execute(self.statements.session_lock_timeout)
            self._lock_timed.add(connection)

    def _insert_by_partition(self, columns: tuple[list, ...]) -> None:
        """Citus: the distributed append function once per partition, in partition order;
        a single call runs on its shard's worker, several share one transaction."""
        call = self.statements.citus.call
        calls = by_partition(columns)
        with self.datastore.get_connection() as connection:
            if len(calls) == 1:
                partition, rows = calls[0]
                connection.execute(call, (partition, *rows), prepare=True)
                return
            with connection.transaction():
                connection.execute(self.statements.lock_timeout)
                for partition, rows in calls:
                    connection.execute(call, (partition, *rows), prepare=True)

    def read_stream(
        self,
        stream_id: UUID,
        *,
        after: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[tuple[StoredEventBase, bytes]]:
        statement = self.statements.read_newest if newest_first else self.statements.read_oldest
        partition = partition_of(stream_id, self.partitions)
        rows = self._rows(statement, (partition, stream_id, after, limit))
        decode, read = self.mapper.decode_record, []
        try:
            for version, topic, state in rows:
                text = self.mapper.opened(state)
                read.append((decode(topic, stream_id, version, text), text))
        except MapperDeserialisationError as error:
            raise RecordUndecodable(str(error)) from error
        return read

    def first_events(
        self, stream_ids: Sequence[UUID], near: Sequence[UUID] = ()
    ) -> list[StoredEventBase]:
        if not stream_ids:
            return []
        if self.distributed and near:
            partitions = sorted({partition_of(stream, self.partitions) for stream in near})
            statement, params = self.statements.first_events_near, (list(stream_ids), partitions)
        else:
            statement, params = self.statements.first_events, (list(stream_ids),)
        rows = self._rows(statement, params)
        opened, decode = self.mapper.opened, self.mapper.decode_record
        try:
            return [decode(t, s, v, opened(state)) for s, v, t, state in rows]
        except MapperDeserialisationError as error:
            raise RecordUndecodable(str(error)) from error

    def read_page(self, after: int, limit: int, partition: int = 0) -> list[LogRecord]:
        assert 0 <= partition < self.partitions, partition
        rows = self._rows(self.statements.page, (partition, after, limit))
        return [LogRecord(*row) for row in rows]

    def heads(self) -> list[int]:
        rows = self._rows(self.statements.heads, ())
        assert [partition for partition, _ in rows] == list(range(len(rows))), "heads have gaps"
        return [position for _, position in rows]

    def stored_rows(self, heads: Sequence[int]) -> tuple[int, int] | None:
        assert len(heads) == self.partitions, (len(heads), self.partitions)
        return self._rows(self.statements.stored_rows, (list(heads),))[0]

    def open_probe(self) -> StoreProbe:
        return open_store_probe(self.environment, EVENTS_TABLE)

    def close(self) -> None:
        self.datastore.close()

    @_retry_broken_connection
    def _rows(self, statement: Composed, params: tuple[Any, ...]) -> list[tuple]:
        """The rows of one prepared query, through a binary cursor (no hex `bytea`)."""
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(binary=True, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(statement, params, prepare=True)
            return cursor.fetchall()


def _partitions(events: Sequence[StoredEventBase], partitions: int) -> list[int]:
    """Each event's partition, each stream's hashed once per append: a command's events
    and its idempotency record share their wallet's, and a busy wallet has several
    commands in one group. Keyed by the id's integer, whose hash is C's, not UUID's."""
    known: dict[int, int] = {}
    column = []
    for event in events:
        stream = partition_stream(event)
        partition = known.get(stream.int)
        if partition is None:
            partition = known[stream.int] = partition_of(stream, partitions)
        column.append(partition)
    return column


def _append_params(columns: tuple[list, ...]) -> dict[str, list]:
    """The append's named parameters, one per column (`_columns`' order)."""
    return dict(zip(_APPEND_COLUMNS, columns, strict=True))


class _Statements:
    """The log's statements, composed once for a schema."""

    def __init__(self, schema: str, lock_timeout_s: int, *, citus: bool) -> None:
        names = {
            "events": Identifier(schema, EVENTS_TABLE),
            "heads": Identifier(schema, HEADS_TABLE),
            "copied": Identifier(schema, COPIED_TABLE),
            "position_index": Identifier(f"{EVENTS_TABLE}_position"),
        }

        def compose(template: str, **extra: Any) -> Composed:
            return SQL(template).format(**names, **extra)

        key = SQL("partition_id, stream_id, version" if citus else "stream_id, version")
        self.create = [
            compose(_CREATE_EVENTS, key=key),
            *(compose(s) for s in _CREATE_REST),
            compose(_CREATE_HEADS, last=PARTITION_COUNT - 1),
        ]
        self.citus = CitusStatements(schema, EVENTS_TABLE, HEADS_TABLE) if citus else None
        self.append = compose(_APPEND)
        self.lock_timeout = SQL("SET LOCAL lock_timeout = {0}").format(f"{lock_timeout_s}s")
        self.session_lock_timeout = SQL("SET lock_timeout = {0}").format(f"{lock_timeout_s}s")
        self.read_oldest = compose(_READ_STREAM, direction=SQL("ASC"))
        self.read_newest = compose(_READ_STREAM, direction=SQL("DESC"))
        self.first_events = compose(_FIRST_EVENTS)
        self.first_events_near = compose(_FIRST_EVENTS_NEAR)
        self.page = compose(_PAGE)
        self.heads = compose(_HEADS)
        self.stored_rows = compose(_STORED_ROWS)
        self.mark_copied = tuple(compose(statement) for statement in _MARK_COPIED)
