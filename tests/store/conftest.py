"""Event logs for the contract suite: every implementation of `EventLog`, each fresh."""

from collections.abc import Iterator

import pytest

from ledger.event_log import EventLog
from ledger.store.database import store_environment, with_layout
from ledger.store.open import open_event_log
from ledger.store.recorder_log import RecorderEventLog
from tests.conftest import drop_pg_schema, new_pg_schema

# The library's in-memory recorder: the same adapter over a recorder of no known SQL layout.
MEMORY_ENVIRONMENT = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("partitioned", marks=pytest.mark.postgres),
        pytest.param("citus", marks=pytest.mark.citus),
        "memory",
    ]
)
def event_log(request, tmp_path) -> Iterator[EventLog]:
    """A fresh, empty event log on SQLite, PostgreSQL (the single log or the partitioned
    one) or the library's in-memory store."""
    if request.param == "memory":
        log = RecorderEventLog(dict(MEMORY_ENVIRONMENT))
        yield log
        log.close()
        return
    if request.param == "sqlite":
        log = RecorderEventLog(store_environment(f"sqlite:///{tmp_path}/log.sqlite3"))
        yield log
        log.close()
        return
    if request.param == "citus":
        url = request.getfixturevalue("citus_url")
        log = open_event_log(store_environment(url))
        yield log
        log.close()
        return
    url = new_pg_schema(request.getfixturevalue("pg_database"))
    layout = "partitioned" if request.param == "partitioned" else "single"
    log = open_event_log(store_environment(with_layout(url, layout)))
    yield log
    log.close()
    drop_pg_schema(url)
