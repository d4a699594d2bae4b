"""Read models built from the event log with exactly-once tracking, and the audit replay."""
