"""Signed checkpoints on an interval, while the server runs (`ledger serve --checkpoint-key`).

A thread of its own wakes every interval, appends a checkpoint of the log if anything was
written since the last one (`ledger.service.checkpoints.write_checkpoint`), and, if asked, adds it
to a directory the operator ships elsewhere (never replacing a file there). Each checkpoint
continues from the previous one this process signed, or at its first from the newest one
kept in that directory: never from the database, which an insider controls. A failure (the
store down, a kept checkpoint that does not verify, a log shorter than the previous
checkpoint) is logged and tried again at the next interval: serving never stops for it, but
the health service's `ledger.v1.LedgerService/checkpoints` turns NOT_SERVING once the next
checkpoint is more than `limits.checkpoint_overdue_intervals` intervals past due, and
SERVING again at the next interval that goes through.
"""

import threading
import time
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core import limits
from ledger.core.checkpoint import SignedCheckpoint
from ledger.service.application import Ledger
from ledger.service.checkpoints import (
    keep_checkpoint_file,
    newest_kept_checkpoint,
    write_checkpoint,
)

_log = structlog.get_logger("ledger.checkpoints")


class Checkpointer:
    def __init__(
        self, ledger: Ledger, key: Ed25519PrivateKey, interval_s: float, directory: Path | None
    ) -> None:
        assert limits.checkpoint_interval_s_min <= interval_s <= limits.checkpoint_interval_s_max
        self.ledger = ledger
        self.key = key
        self.interval_s = interval_s
        self.directory = directory
        self.previous: SignedCheckpoint | None = None
        self.started = False  # the kept directory is read at the first write, not at startup
        self.done_at_s = time.monotonic()  # the last interval that went through (or the start)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ledger-checkpoints", daemon=True)

    @property
    def healthy(self) -> bool:
        """False while the next checkpoint is overdue past the bound of limits.py."""
        return not is_overdue(self.done_at_s, time.monotonic(), self.interval_s)

    def start(self) -> None:
        self.done_at_s = time.monotonic()
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=limits.shutdown_grace_s)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                self.write_once()
            except Exception as error:  # logged and retried at the next interval
                _log.error("checkpoint failed", error=str(error), kind=type(error).__name__)
                continue
            # Nothing new to sign counts too: the checkpoints are as current as the log.
            self.done_at_s = time.monotonic()

    def write_once(self) -> None:
        if not self.started and self.directory is not None:
            self.previous = newest_kept_checkpoint(
                self.directory, self.key.public_key(), self.ledger.log.partitions
            )
        self.started = True
        signed = write_checkpoint(
            self.ledger.log, self.key, self.ledger.clock(), previous=self.previous
        )
        if signed is None:
            return
        self.previous = signed
        if self.directory is not None:
            keep_checkpoint_file(self.directory, signed)
        stated = signed.checkpoint
        _log.info(
            "checkpoint written",
            position=stated.position,
            events=stated.event_count,
            merkle_root=stated.merkle_root,
        )


def is_overdue(done_at_s: float, now_s: float, interval_s: float) -> bool:
    """Whether the checkpoint due one interval after done_at_s is now more than
    `limits.checkpoint_overdue_intervals` intervals late."""
    assert interval_s > 0
    late_s = now_s - (done_at_s + interval_s)
    return late_s > limits.checkpoint_overdue_intervals * interval_s
