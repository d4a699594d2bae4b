"""A cheap, bounded check that the event store answers: one short read of the event table,
on a connection of the probe's own.

The probe does not borrow from the store's pool. The pool lends connections without a ping
(docs/decisions.md), so a probe through it would fail once for every connection a restart
broke although the server is back; under load it would wait for a free connection and report
an outage that is none; and its timeouts are the commands' (seconds), not a probe's. A
connection of its own has short timeouts, and one that broke since the last check is
replaced at once: only a fresh connection failing is an outage.
"""

import sqlite3
from abc import ABC, abstractmethod

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.core import limits
from ledger.store.database import connection_settings, search_path_option

PROBE_TIMEOUT_S = limits.health_probe_timeout_ms / 1000


class StoreProbe(ABC):
    @abstractmethod
    def check(self) -> None:
        """Returns if the store answered; raises the driver's error if it did not."""

    @abstractmethod
    def close(self) -> None: ...


def open_store_probe(environment: dict[str, str], events_table: str) -> StoreProbe:
    """A probe of the store the library's environment names, reading its table events_table."""
    module = environment["PERSISTENCE_MODULE"]
    if module == "eventsourcing.sqlite":
        return SqliteProbe(environment["SQLITE_DBNAME"], events_table)
    if module == "eventsourcing.postgres":
        return PostgresProbe(environment, events_table)
    return InProcessProbe()


class InProcessProbe(StoreProbe):
    """The library's in-memory store lives in this process: while the process answers, so
    does the store."""

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteProbe(StoreProbe):
    """SQLite has no server to lose; this finds a file that cannot be read any more."""

    def __init__(self, path: str, events_table: str) -> None:
        # The health thread is the only user, but not the thread that opens it.
        self.connection = sqlite3.connect(path, timeout=PROBE_TIMEOUT_S, check_same_thread=False)
        self.statement = f'SELECT 1 FROM "{events_table}" LIMIT 1'

    def check(self) -> None:
        self.connection.execute(self.statement).fetchall()

    def close(self) -> None:
        self.connection.close()


class PostgresProbe(StoreProbe):
    def __init__(self, environment: dict[str, str], events_table: str) -> None:
        timeout_ms = limits.health_probe_timeout_ms
        self.settings = connection_settings(
            environment,
            connect_timeout=round(PROBE_TIMEOUT_S),
            options=f"{search_path_option(environment)} -c statement_timeout={timeout_ms}",
        )
        self.statement = SQL("SELECT 1 FROM {} LIMIT 1").format(Identifier(events_table))
        self.connection: psycopg.Connection | None = None  # opened by the first check

    def check(self) -> None:
        reused = self.connection is not None and not self.connection.broken
        if not reused:
            self.connection = psycopg.connect(**self.settings)
        try:
            self.connection.execute(self.statement).fetchall()
        except psycopg.OperationalError:
            if not (reused and self.connection.broken):
                raise  # a fresh connection failed, or the query did: that is the answer
            # Broken since the last check (a restart, a terminated backend): ask afresh.
            self.connection = psycopg.connect(**self.settings)
            self.connection.execute(self.statement).fetchall()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
