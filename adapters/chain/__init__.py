"""Ethereum ERC-20 deposit watcher: `Transfer` logs to per-player deposit addresses → Deposit."""
