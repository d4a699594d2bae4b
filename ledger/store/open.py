"""Opening the event log a store environment names: the partitioned log on PostgreSQL (asked
for by `?layout=partitioned` or `citus`, or chosen by `ledger.store.layout` when the URL
names no layout), else the library's recorder (SQLite, the single PostgreSQL log, or the
in-memory one)."""

from ledger.event_log import CopyTarget, EventLog
from ledger.store.database import LAYOUT_CITUS, LAYOUT_PARTITIONED, LOG_LAYOUT
from ledger.store.layout import found_tables, resolved
from ledger.store.partitioned_log import PartitionedEventLog
from ledger.store.recorder_log import RecorderEventLog


def open_event_log(environment: dict[str, str]) -> EventLog:
    """The event log of a store environment (`ledger.store.database.store_environment`)."""
    environment = resolved(environment)
    if environment.get(LOG_LAYOUT) in (LAYOUT_PARTITIONED, LAYOUT_CITUS):
        return PartitionedEventLog(environment)
    return RecorderEventLog(environment)


def open_copy_target(environment: dict[str, str]) -> CopyTarget:
    """The partitioned log of a store environment, to copy another log into."""
    assert environment.get(LOG_LAYOUT) in (LAYOUT_PARTITIONED, LAYOUT_CITUS), environment
    return PartitionedEventLog(environment)


def holds_single_log(environment: dict[str, str]) -> bool:
    """Whether a PostgreSQL store holds the single log (`ledger migrate`'s source)."""
    return found_tables(environment).single
