"""Event logs for the contract suite: every implementation of `EventLog`, each fresh."""

from collections.abc import Iterator

import pytest

from ledger.store.database import store_environment
from ledger.store.recorder_log import RecorderEventLog
from tests.conftest import drop_pg_schema, new_pg_schema

# The library's in-memory recorder: the same adapter over a recorder of no known SQL layout.
MEMORY_ENVIRONMENT = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def event_log(request, tmp_path) -> Iterator[RecorderEventLog]:
    """A fresh, empty event log on SQLite, PostgreSQL or the library's in-memory store."""
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
    url = new_pg_schema(request.getfixturevalue("pg_database"))
    log = RecorderEventLog(store_environment(url))
    yield log
    log.close()
    drop_pg_schema(url)
