"""`ArrayInsertPostgresApplicationRecorder` overrides private methods of the library's
PostgreSQL recorder; the library's own recorder test case pins that it still behaves as one.
"""

from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from ledger.store.database import store_environment
from ledger.store.pg_recorder import ArrayInsertPostgresApplicationRecorder
from ledger.store.recorder_log import RecorderEventLog
from tests.conftest import drop_pg_schema, new_pg_schema

pytestmark = pytest.mark.postgres


class TestArrayInsertRecorder(ApplicationRecorderTestCase[ArrayInsertPostgresApplicationRecorder]):
    """The library's application-recorder tests, each on a schema of its own."""

    @pytest.fixture(autouse=True)
    def _schema(self, pg_database):
        self.url = new_pg_schema(pg_database)
        self.logs: list[RecorderEventLog] = []
        yield
        for log in self.logs:
            log.close()
        drop_pg_schema(self.url)

    def create_recorder(self) -> ArrayInsertPostgresApplicationRecorder:
        log = RecorderEventLog(store_environment(self.url))
        self.logs.append(log)
        assert isinstance(log.recorder, ArrayInsertPostgresApplicationRecorder)
        return log.recorder

    def test_insert_select(self) -> None:
        """Replaces the library's test, which expects notification ids back from an insert:
        this recorder returns none by design (the ledger reads the log instead), so this one
        pins that, and the rest of what the library's test checks."""
        recorder = self.create_recorder()
        assert recorder.max_notification_id() is None
        first, second = uuid4(), uuid4()
        events = [
            StoredEvent(first, 1, "topic1", b"state1"),
            StoredEvent(first, 2, "topic2", b"state2"),
        ]
        assert recorder.insert_events(events) is None
        assert recorder.insert_events([StoredEvent(second, 1, "topic3", b"state3")]) is None
        assert [e.state for e in recorder.select_events(first)] == [b"state1", b"state2"]
        with pytest.raises(IntegrityError):
            recorder.insert_events([StoredEvent(second, 1, "topic4", b"state4")])
        notes = recorder.select_notifications(start=1, limit=10)
        assert [(n.id, n.topic, n.state) for n in notes] == [
            (1, "topic1", b"state1"),
            (2, "topic2", b"state2"),
            (3, "topic3", b"state3"),
        ]
        assert recorder.max_notification_id() == 3
        assert [
            n.id for n in recorder.select_notifications(start=1, limit=10, topics=["topic2"])
        ] == [2]
