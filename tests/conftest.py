"""Shared fixtures: a fresh store per test on SQLite (a temp file) and on PostgreSQL.

PostgreSQL tests use one database per test run and one schema per test, dropped after.
Without a reachable server they skip with the reason, except under CI=true, where the
suite fails instead: CI must never pass by silently skipping the production store.
"""

import asyncio
import functools
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from ledger.v1 import ledger_pb2_grpc as pb_grpc

PG_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IS_CI = os.environ.get("CI", "").lower() == "true"
# The event tables' layout the PostgreSQL stores of this run use (`?layout=` of the URL):
# unset, the default; `partitioned` runs every PostgreSQL test on the partitioned log.
PG_LAYOUT = os.environ.get("LEDGER_TEST_PG_LAYOUT", "")
# A running Citus cluster's coordinator (`postgresql://USER@HOST:PORT/DATABASE`, the database
# created with the citus extension on every node): the Citus tests run on it, or skip.
CITUS_URL = os.environ.get("LEDGER_TEST_CITUS_URL", "")
CITUS_UNSET = "LEDGER_TEST_CITUS_URL is unset: no Citus cluster (its coordinator's URL) to test on"


def _pg_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test run; dropped at the end."""
    try:
        admin = _pg_connect(PG_ADMIN_URL)
    except psycopg.OperationalError as error:
        if IS_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {error}")
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _pg_connect(PG_ADMIN_URL) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_pg_schema(pg_database: str) -> str:
    """Creates a fresh schema in the run's database and returns a URL that uses it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_connect(pg_database) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    layout = f"&layout={PG_LAYOUT}" if PG_LAYOUT else ""
    return f"{pg_database}?schema={schema}{layout}"


@pytest.fixture
def citus_url() -> Iterator[str]:
    """A fresh schema on the Citus cluster LEDGER_TEST_CITUS_URL names, as a `layout=citus`
    store URL; dropped after. Skips, with that reason, without a cluster."""
    if not CITUS_URL:
        pytest.skip(CITUS_UNSET)
    url = new_citus_schema()
    yield url
    drop_pg_schema(url)


def new_citus_schema() -> str:
    """Creates a schema on the Citus coordinator (Citus propagates it to the workers) and
    returns a store URL that uses it with the Citus layout."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_connect(CITUS_URL) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{CITUS_URL}?schema={schema}&layout=citus"


def drop_pg_schema(url: str) -> None:
    base, _, query = url.partition("?schema=")
    schema = query.split("&")[0]
    with _pg_connect(base) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.sqlite3"
        return
    url = new_pg_schema(request.getfixturevalue("pg_database"))
    yield url
    drop_pg_schema(url)


class SteppingClock:
    """A deterministic clock: each reading is `step` after the previous one."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)):
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def run_on_loop(ledger, commands) -> list:
    """execute_validated_async as the server drives it: store round trips on a thread pool."""

    async def run():
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as executor:
            return await ledger.execute_validated_async(
                commands, functools.partial(loop.run_in_executor, executor)
            )

    return asyncio.run(run())


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL cluster of this test module's own, which tests may stop and restart
    (tests/private_postgres.py). Skips without the server binaries, except under CI=true."""
    from tests.private_postgres import ClusterUnavailable, PrivateCluster

    try:
        cluster = PrivateCluster()
    except ClusterUnavailable as error:
        if IS_CI:
            pytest.fail(f"a private PostgreSQL cluster is required under CI=true: {error}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {error}")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def fake_engine():
    """Starts in-process gRPC servers for hand-written servicers; returns each one's target."""
    servers = []

    def start(servicer) -> str:
        server = grpc.server(ThreadPoolExecutor(4))
        pb_grpc.add_LedgerServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)
