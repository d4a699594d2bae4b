"""Which event-log layout a PostgreSQL store has, when its URL names none.

A URL's `?layout=` wins. Without one, the store's own tables decide, looked at once when it
is opened (under the startup lock, so two processes opening a new store agree):

1. a partitioned log beside a single log whose copy never finished (distributed by Citus or
   not): refused, naming the ways on (finish the migration, or name the layout), since
   either guess could serve a player a balance from the wrong history;
2. a finished copy whose partitioned log is gone, or whose single log was written past the
   copy (a server left on it): refused, since either log lacks events the other holds;
3. a partitioned log distributed by Citus: `citus`;
4. a partitioned log, alone or beside a single log `ledger migrate` finished copying into
   it: `partitioned`;
5. the single log alone (a store made before the partitioned log was the default):
   `single`, until `ledger migrate` carries it over;
6. nothing yet, on a database with the Citus extension: `citus`;
7. nothing yet: `partitioned`, the default.
"""

from dataclasses import dataclass

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.core.errors import InvalidArgument
from ledger.store.database import (
    LAYOUT_AUTO,
    LAYOUT_CITUS,
    LAYOUT_PARTITIONED,
    LAYOUT_SINGLE,
    LOG_LAYOUT,
    connection_settings,
)
from ledger.store.partitioned_log import COPIED_TABLE, EVENTS_TABLE
from ledger.store.recorder_log import SINGLE_EVENTS_TABLE

_FOUND = """SELECT
    to_regclass(%(single)s) IS NOT NULL,
    to_regclass(%(partitioned)s) IS NOT NULL,
    to_regclass(%(copied)s) IS NOT NULL,
    EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"""
_DISTRIBUTED = "SELECT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = %s::regclass)"
# The single log's head past every finished copy's (the migration's `source_head`).
_WRITTEN_AFTER = (
    "SELECT coalesce((SELECT max(notification_id) FROM {single}), 0) > "
    "coalesce((SELECT max(source_head) FROM {copied}), 0)"
)


@dataclass(frozen=True)
class FoundTables:
    """What a store's schema holds, as far as choosing its layout goes."""

    single: bool  # the library's single log
    partitioned: bool  # the partitioned log
    copied: bool  # a finished `ledger migrate` into the partitioned log
    citus: bool  # the database has the Citus extension
    distributed: bool  # the partitioned log is distributed by Citus
    written_after_copy: bool = False  # the single log holds events past the finished copy


def chosen_layout(found: FoundTables) -> str:
    """The layout of a store whose URL names none (the rules of this module's docstring)."""
    problem = _ambiguity(found)
    if problem is not None:
        raise InvalidArgument("database_url", problem)
    if found.partitioned:
        return LAYOUT_CITUS if found.distributed else LAYOUT_PARTITIONED
    if found.single:
        return LAYOUT_SINGLE
    return LAYOUT_CITUS if found.citus else LAYOUT_PARTITIONED


def _ambiguity(found: FoundTables) -> str | None:
    """Why no layout can be chosen from these tables, with the ways on; None if one can."""
    if found.partitioned and found.single and not found.copied:
        if found.distributed:  # `ledger migrate` never writes a distributed log
            return (
                "this store holds the single event log beside a distributed log no `ledger "
                "migrate` copied into: add ?layout=single or ?layout=citus to say which to serve"
            )
        return (
            "this store holds the single event log and an unfinished `ledger migrate` copy "
            "of it: run `ledger migrate` again to finish it (mend first what its audit found, "
            "if it found anything), or add ?layout=single to keep serving the single log"
        )
    if found.copied and found.single and found.written_after_copy:
        return (
            "this store's single event log was written after `ledger migrate` copied it (a "
            "server left on it): the copy lacks those events. Stop that server, then add "
            "?layout=single or ?layout=partitioned to say which history to serve"
        )
    if found.copied and not found.partitioned:
        return (
            "this store's `ledger migrate` copy is marked finished but its partitioned log is "
            "gone, and the single log stopped at the migration: restore the partitioned "
            "tables, or add ?layout=single to serve the history as it stood then"
        )
    return None


def resolved(environment: dict[str, str]) -> dict[str, str]:
    """The environment with a concrete layout: as given, or chosen from the store's tables."""
    if environment.get(LOG_LAYOUT) != LAYOUT_AUTO:
        return environment
    return {**environment, LOG_LAYOUT: chosen_layout(found_tables(environment))}


def found_tables(environment: dict[str, str]) -> FoundTables:
    """Looks, in one short connection, at what the environment's schema holds."""
    schema = environment["POSTGRES_SCHEMA"] or "public"
    names = {
        "single": _qualified(schema, SINGLE_EVENTS_TABLE),
        "partitioned": _qualified(schema, EVENTS_TABLE),
        "copied": _qualified(schema, COPIED_TABLE),
    }
    with psycopg.connect(**connection_settings(environment)) as connection:
        single, partitioned, copied, citus = connection.execute(_FOUND, names).fetchone()
        distributed = bool(
            citus
            and partitioned
            and connection.execute(_DISTRIBUTED, (names["partitioned"],)).fetchone()[0]
        )
        written_after = bool(
            single and copied and connection.execute(_written_after(schema)).fetchone()[0]
        )
    return FoundTables(single, partitioned, copied, citus, distributed, written_after)


def _written_after(schema: str):
    return SQL(_WRITTEN_AFTER).format(
        single=Identifier(schema, SINGLE_EVENTS_TABLE), copied=Identifier(schema, COPIED_TABLE)
    )


def _qualified(schema: str, table: str) -> str:
    """A regclass literal that keeps the names' case."""
    return '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))
