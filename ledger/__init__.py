"""Casino ledger: an event-sourced double-entry ledger engine for online casinos."""
