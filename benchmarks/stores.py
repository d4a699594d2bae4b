"""The databases of a throughput run, on PostgreSQL (a new store's default layout, the
partitioned log), PostgreSQL with the single log (`?layout=single`, stores made before) or
SQLite: created fresh, dropped afterwards, and the plain connections of the raw-store
baseline (a). `partitioned` names the default layout explicitly."""

import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg

from ledger.store.database import LAYOUT_PARTITIONED, LAYOUT_SINGLE, with_layout

STORES = ("postgresql", "partitioned", "single", "sqlite")
NAMES = {
    "postgresql": "PostgreSQL",
    "partitioned": "PostgreSQL, partitioned log",
    "single": "PostgreSQL, single log",
    "sqlite": "SQLite",
}
_LAYOUTS = {"partitioned": LAYOUT_PARTITIONED, "single": LAYOUT_SINGLE}
SQLITE_BUSY_TIMEOUT_S = 30  # raw writers queue for SQLite's single write lock


class BenchStore:
    def __init__(self, kind: str, pg_admin: str, workdir: Path) -> None:
        assert kind in STORES, kind
        self.kind = kind
        self.pg_admin = pg_admin
        self.workdir = workdir
        self.name = NAMES[kind]
        # The raw baseline (a) writes plain rows: the log's layout plays no part in it.
        self.engine = "SQLite" if kind == "sqlite" else "PostgreSQL"

    def fresh(self, name: str) -> str:
        """The URL of a new, empty database called name."""
        if self.kind == "sqlite":
            path = self.workdir / f"{name}.sqlite3"
            self._remove_files(path)
            return f"sqlite:///{path.resolve()}"
        with psycopg.connect(self.pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        url = self.pg_admin.rsplit("/", 1)[0] + f"/{name}"
        layout = _LAYOUTS.get(self.kind)
        return with_layout(url, layout) if layout else url

    def drop(self, url: str) -> None:
        if self.kind == "sqlite":
            self._remove_files(Path(url.removeprefix("sqlite:///")))
            return
        with psycopg.connect(self.pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{_dbname(url)}" WITH (FORCE)')

    def create_raw_table(self, url: str) -> None:
        key = "INTEGER" if self.kind == "sqlite" else "bigserial"
        with closing(self.connect(url)) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS raw_ops (id {key} PRIMARY KEY, payload text)")
            conn.commit()

    def connect(self, url: str):
        """A plain connection (execute, commit, close) for the raw baseline; SQLite in WAL,
        as the library's recorder opens it."""
        if self.kind != "sqlite":
            return psycopg.connect(_without_query(url))
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=SQLITE_BUSY_TIMEOUT_S)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @property
    def insert_sql(self) -> str:
        placeholder = "?" if self.kind == "sqlite" else "%s"
        return f"INSERT INTO raw_ops (payload) VALUES ({placeholder})"

    @staticmethod
    def _remove_files(path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _without_query(url: str) -> str:
    """The URL without its query (`?layout=`): libpq refuses parameters it does not know."""
    return url.split("?", 1)[0]


def _dbname(url: str) -> str:
    return _without_query(url).rsplit("/", 1)[1]
