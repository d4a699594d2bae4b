"""The event store: the only code that speaks SQL to the event tables (see ledger/event_log.py)."""
