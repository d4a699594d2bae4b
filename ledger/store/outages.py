"""Which store errors are outages: the store unreachable or refusing for now, worth waiting out.

The persistence layer turns driver errors into one family (the eventsourcing library's
datastores do, and so do the projection stores). Of that family, `OperationalError` and
`InterfaceError` are what a lost or refused connection raises on PostgreSQL: the server
restarted, stopped or unreachable, a backend terminated, the pool out of connections for its
timeout, a lock or statement timeout, a serialization failure. SQLite raises its
`OperationalError` for mistakes too ("no such table", a syntax error), so there only a busy
or unreadable file counts. Everything else (an integrity violation, an event that does not
decode, a failed assertion) is a bug: waiting will not fix it, and retrying would hide it.
"""

import sqlite3

from eventsourcing.persistence import InterfaceError, OperationalError

# How SQLite words a file that is locked by another writer past the busy timeout, or that
# cannot be read or written right now.
SQLITE_OUTAGE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk I/O error",
    "database or disk is full",
)


def is_store_outage(error: BaseException) -> bool:
    """Whether error says the store is unavailable for now, rather than that something is wrong."""
    if not isinstance(error, (OperationalError, InterfaceError)):
        return False
    cause = error.__cause__
    if isinstance(cause, sqlite3.Error):
        return str(cause).startswith(SQLITE_OUTAGE_MESSAGES)
    return True
