"""What the partitioned log does differently on Citus (`?layout=citus`).

The events and heads tables are distributed by `partition_id` and co-located, so a
partition's rows and its head live on one shard. An append goes through one function per
partition, `ledger_log_append`, distributed by its partition argument: called on its own it
runs on the worker that owns the shard, in one round trip and one shard's transaction (a
command's events and its idempotency record share their wallet's partition). An append
over several partitions (a group commit) calls it once per partition, in partition order,
in one transaction that Citus commits on every shard it touched with two-phase commit.
"""

from typing import Any

from psycopg.sql import SQL, Composed, Identifier

SHARD_COUNT = 32  # shards of the 256 partitions: a few per worker core on small clusters

_APPEND_FUNCTION = """CREATE OR REPLACE FUNCTION {function}(
        p smallint, streams uuid[], versions bigint[], recorded timestamptz[], topics text[],
        states bytea[]) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        base bigint;
    BEGIN
        UPDATE {heads} SET last_position = last_position + cardinality(streams)
            WHERE partition_id = p RETURNING last_position - cardinality(streams) INTO base;
        INSERT INTO {events} (partition_id, position, stream_id, version, recorded_at, topic,
            state)
        SELECT p, base + e.ord, e.stream_id, e.version, e.recorded_at, e.topic, e.state
        FROM unnest(streams, versions, recorded, topics, states) WITH ORDINALITY
            AS e(stream_id, version, recorded_at, topic, state, ord);
    END $$"""
_IS_DISTRIBUTED = "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = %s::regclass"
_DISTRIBUTE_EVENTS = "SELECT create_distributed_table(%s, 'partition_id', shard_count => %s)"
_DISTRIBUTE_HEADS = "SELECT create_distributed_table(%s, 'partition_id', colocate_with => %s)"
_DISTRIBUTE_FUNCTION = (
    "SELECT create_distributed_function(%s, distribution_arg_name => 'p', colocate_with => %s)"
)
_CALL = (
    "SELECT {function}(%s, %b::uuid[], %b::bigint[], %b::timestamptz[], %b::text[], %b::bytea[])"
)
FUNCTION_SIGNATURE = "(smallint, uuid[], bigint[], timestamptz[], text[], bytea[])"


class CitusStatements:
    """The Citus statements for one schema's tables."""

    def __init__(self, schema: str, events: str, heads: str) -> None:
        self.schema, self.events, self.heads = schema, events, heads
        names: dict[str, Any] = {
            "events": Identifier(schema, events),
            "heads": Identifier(schema, heads),
            "function": Identifier(schema, "ledger_log_append"),
        }
        self.append_function: Composed = SQL(_APPEND_FUNCTION).format(**names)
        self.call: Composed = SQL(_CALL).format(**names)

    def distribute(self, cursor) -> None:
        """Distributes the tables and the append function, unless done before."""
        events, heads = f"{self.schema}.{self.events}", f"{self.schema}.{self.heads}"
        cursor.execute(self.append_function)
        if cursor.execute(_IS_DISTRIBUTED, (events,)).fetchone()[0] == 0:
            cursor.execute(_DISTRIBUTE_EVENTS, (events, SHARD_COUNT))
        if cursor.execute(_IS_DISTRIBUTED, (heads,)).fetchone()[0] == 0:
            cursor.execute(_DISTRIBUTE_HEADS, (heads, events))
        function = f"{self.schema}.ledger_log_append{FUNCTION_SIGNATURE}"
        cursor.execute(_DISTRIBUTE_FUNCTION, (function, events))


def is_remote_unique_violation(error: Exception) -> bool:
    """Whether a Citus error is a worker's unique violation: inside a multi-shard
    transaction the coordinator passes it on as an internal error (XX000) with the worker's
    message, not as SQLSTATE 23505."""
    cause = error.__cause__
    diagnostic = getattr(cause, "diag", None)
    message = getattr(diagnostic, "message_primary", None) or ""
    return message.startswith("duplicate key value violates unique constraint")


def by_partition(columns: tuple[list, ...]) -> list[tuple[int, tuple[list, ...]]]:
    """The append's columns split by partition (the first column), in partition order,
    each partition's rows in the order given."""
    rows: dict[int, list[tuple]] = {}
    for row in zip(*columns, strict=True):
        rows.setdefault(row[0], []).append(row[1:])
    return [
        (partition, tuple(list(column) for column in zip(*rows[partition], strict=True)))
        for partition in sorted(rows)
    ]
