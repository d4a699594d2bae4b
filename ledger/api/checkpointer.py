"""Signed checkpoints on an interval, while the server runs (`ledger serve --checkpoint-key`).

A thread of its own wakes every interval, appends a checkpoint of the log if anything was
written since the last one (`ledger.checkpoints.write_checkpoint`), and, if asked, writes it
to a file in a directory the operator ships elsewhere. A failure (the store down, a stored
checkpoint that does not verify) is logged and tried again at the next interval: serving
never stops for it.
"""

import threading
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.application import Ledger
from ledger.checkpoints import write_checkpoint, write_checkpoint_file
from ledger.core import limits

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
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ledger-checkpoints", daemon=True)

    def start(self) -> None:
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

    def write_once(self) -> None:
        store = self.ledger.store
        signed = write_checkpoint(store.recorder, store.mapper, self.key, self.ledger.clock())
        if signed is None:
            return
        stated = signed.checkpoint
        if self.directory is not None:
            name = f"checkpoint-{stated.position:012d}.json"
            write_checkpoint_file(self.directory / name, signed)
        _log.info("checkpoint written", position=stated.position, events=stated.event_count,
                  merkle_root=stated.merkle_root)  # fmt: skip
