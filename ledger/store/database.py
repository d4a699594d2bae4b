"""Database selection: a URL (`sqlite:///path` or `postgresql://...`) becomes the
eventsourcing library's environment for its SQLite or PostgreSQL (psycopg 3, pooled) module.
"""

import contextlib
import zlib
from collections.abc import Iterator
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

import psycopg

from ledger.core.errors import InvalidArgument

DEFAULT_DATABASE_URL = "sqlite:///ledger.sqlite3"
POSTGRES_POOL_SIZE_DEFAULT = 8
POSTGRES_POOL_OVERFLOW_DEFAULT = 8
LOCK_TIMEOUT_S = 10
# The event tables' layout on PostgreSQL (`?layout=` in the URL): the library's single log,
# the partitioned log (`ledger.store.partitioned_log`), or the partitioned log distributed on
# a Citus cluster (`ledger.store.citus`; the URL names the coordinator). A URL naming none
# leaves it to the store's tables (`ledger.store.layout`): a new store is partitioned.
LOG_LAYOUT = "LEDGER_LOG_LAYOUT"
LAYOUT_SINGLE, LAYOUT_PARTITIONED, LAYOUT_CITUS = "single", "partitioned", "citus"
LAYOUTS = (LAYOUT_SINGLE, LAYOUT_PARTITIONED, LAYOUT_CITUS)
LAYOUT_AUTO = "auto"


def store_environment(url: str) -> dict[str, str]:
    """The eventsourcing environment for a database URL; refuses anything else."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite_environment(parts.path, url)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgres_environment(parts)
    raise InvalidArgument("database_url", "must start with sqlite:/// or postgresql://")


def _sqlite_environment(path: str, url: str) -> dict[str, str]:
    # sqlite:///relative.db has path "/relative.db"; sqlite:////abs/x.db has "//abs/x.db".
    name = path[1:] if path.startswith("/") else path
    if not name:
        raise InvalidArgument("database_url", f"names no SQLite file: {url!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": unquote(name),
        "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_S),
        "CREATE_TABLE": "y",
    }


def _postgres_environment(parts) -> dict[str, str]:
    dbname = parts.path.lstrip("/")
    if not dbname:
        raise InvalidArgument("database_url", "names no PostgreSQL database")
    query = parse_qs(parts.query)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": query.get("schema", [""])[0],
        "POSTGRES_POOL_SIZE": query.get("pool_size", [str(POSTGRES_POOL_SIZE_DEFAULT)])[0],
        "POSTGRES_MAX_OVERFLOW": str(POSTGRES_POOL_OVERFLOW_DEFAULT),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_S),
        # No ping per pool checkout: it cost two round trips per group commit. A connection
        # broken by a server restart fails its next use, and every read and write retries
        # on a fresh one (the library's recorders, and ledger.store.reads, on OperationalError).
        "POSTGRES_PRE_PING": "n",
        "CREATE_TABLE": "y",
        "APPLICATION_RECORDER_TOPIC": (
            "ledger.store.pg_recorder:ArrayInsertPostgresApplicationRecorder"
        ),
        LOG_LAYOUT: _layout(query["layout"][0]) if "layout" in query else LAYOUT_AUTO,
    }


def _layout(name: str) -> str:
    if name not in LAYOUTS:
        raise InvalidArgument("database_url", f"layout must be one of {', '.join(LAYOUTS)}")
    return name


def with_layout(url: str, layout: str) -> str:
    """The URL with its `layout` query parameter set to layout."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "layout"]
    return parts._replace(query=urlencode([*query, ("layout", layout)])).geturl()


def redact(url: str) -> str:
    """The URL with any password removed, for logs and summaries."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


@contextlib.contextmanager
def startup_lock(environment: dict[str, str]) -> Iterator[None]:
    """Serialises table creation between processes starting at once on one PostgreSQL.

    The library creates tables and types when an application starts; two processes doing
    that concurrently can make PostgreSQL refuse one with "tuple concurrently updated".
    A session advisory lock keyed by the schema makes them take turns. SQLite needs none.
    """
    if environment["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        yield
        return
    schema = environment["POSTGRES_SCHEMA"] or "public"
    key = zlib.crc32(f"ledger-startup:{schema}".encode())
    with psycopg.connect(**connection_settings(environment)) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


def connection_settings(environment: dict[str, str], **options: object) -> dict[str, object]:
    """psycopg.connect's keyword arguments for a PostgreSQL environment, outside the pool.

    Args:
        options: settings that replace or add to the defaults (autocommit, the environment's
            connect timeout), such as `options="-c search_path=..."`.
    """
    return {
        "dbname": environment["POSTGRES_DBNAME"],
        "host": environment["POSTGRES_HOST"],
        "port": environment["POSTGRES_PORT"],
        "user": environment["POSTGRES_USER"],
        "password": environment["POSTGRES_PASSWORD"] or None,
        "connect_timeout": int(environment["POSTGRES_CONNECT_TIMEOUT"]),
        "autocommit": True,
        **options,
    }


def search_path_option(environment: dict[str, str]) -> str:
    """The libpq `options` setting that puts the environment's schema on the search path."""
    return f"-c search_path={environment['POSTGRES_SCHEMA'] or 'public'}"
