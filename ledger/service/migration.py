"""`ledger migrate`: carrying a single-log PostgreSQL store over to the partitioned layout.

The history is copied record by record, as stored: the same topic and the same (encrypted,
compressed) state bytes, so every digest and hash chain is the one the old table held. Each
record goes to the partition `ledger.core.partition` assigns it, in the old log's order, so
each stream's versions keep their order. The old tables are only read, never changed.

The copy is made in pages, one transaction each, and resumes after a crash: the new log
then holds a prefix of the old one (pages are all or nothing, in the old order), so the copy
skips as many records as the new log holds, once their fingerprint proves them that prefix:
a new log written since (a finished copy in service) is refused before anything is copied.
The old log must not be written while it runs (stop the servers first): a log that moved is
refused at the end.

When the copy is complete it is proved, twice: the audit replays the copy (chains, journals,
idempotency records, trial balance), and an order-independent fingerprint of every record's
(stream, version, digest) must be the same on both sides. Only a proved copy is marked
finished, and only then does a URL that names no layout open it instead of the old log.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core import limits
from ledger.core.chain import raw_digest
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.errors import LedgerError
from ledger.core.events import StoredEventBase
from ledger.event_log import CopyTarget, EventLog, LogRecord, log_size, merged_records
from ledger.service.checkpoints import write_checkpoint
from projections.audit import audit
from projections.checkpoint_check import NamedCheckpoint

_FINGERPRINT_MODULUS = 2**256


class MigrationRefused(LedgerError):
    """The copy cannot start or be trusted: the target is not a prefix of the source, or
    the source moved while it was copied."""


@dataclass(frozen=True)
class Anchor:
    """The checkpoint chain to carry across the migration: the key that signs, the single
    log's newest kept checkpoint (None to start the copy's chain afresh), and the time."""

    key: Ed25519PrivateKey
    previous: SignedCheckpoint | None
    now: datetime


@dataclass
class MigrationReport:
    events: int = 0  # records in the old log
    copied: int = 0  # records this run copied (fewer when it resumed a copy)
    findings: list[str] = field(default_factory=list)
    checkpoint: SignedCheckpoint | None = None  # the copy's first, with an anchor

    @property
    def is_sound(self) -> bool:
        return not self.findings


def migrate(
    source: EventLog,
    target: CopyTarget,
    on_progress: Callable[[int], None] = lambda done: None,
    anchor: Anchor | None = None,
) -> MigrationReport:
    """Copies source's history into the (empty, or partly copied) target and proves it.

    With an anchor, the old log must first pass its audit against the anchor's previous
    checkpoint, and the proved copy's first checkpoint names that one: whoever holds the
    key vouches, in one signed chain, that the copy is the history the old one pinned."""
    assert source.partitions == 1, "the source is a single log"
    if anchor is not None and anchor.previous is not None:
        _prove_anchored(source, anchor)
    heads, report = source.heads(), MigrationReport()
    skip = log_size(target)
    copy = _Copy(target, skip, _fingerprint(target) if skip else 0, on_progress)
    source_fingerprint = 0
    for record in merged_records(source):
        plaintext = source.plaintext(record)
        leaf = _leaf(record, plaintext)
        source_fingerprint += leaf
        copy.add(record, source.decode(record, plaintext), leaf)
    copy.flush()
    report.events, report.copied = copy.seen, copy.copied
    if copy.skip > copy.seen:
        raise MigrationRefused(
            f"the partitioned log already holds {copy.skip} events, the old log {copy.seen}: "
            "it is not a copy of this store"
        )
    if source.heads() != heads:
        raise MigrationRefused("the old log was written during the copy: stop every server")
    _prove(target, source_fingerprint % _FINGERPRINT_MODULUS, report)
    if report.is_sound:
        target.mark_copied(report.events, heads[0])
        if anchor is not None:
            report.checkpoint = write_checkpoint(
                target, anchor.key, anchor.now, carried_over=anchor.previous
            )
    return report


def _prove_anchored(source: EventLog, anchor: Anchor) -> None:
    """The old log still extends the checkpoint the copy's chain will name, or nothing is
    copied."""
    assert anchor.previous is not None
    named = NamedCheckpoint("the previous checkpoint", anchor.previous)
    audited = audit(source, None, checkpoints=[named], trusted_keys=[anchor.key.public_key()])
    if not audited.passed:
        raise MigrationRefused(
            f"the old log fails its audit against the previous checkpoint, so no chain can "
            f"go on from it: {audited.findings[0]}"
        )


class _Copy:
    """Appends the records it is given after the first `skip`, a page per transaction, once
    those first records' fingerprint is the target's (`held`): it holds them already."""

    def __init__(
        self, target: CopyTarget, skip: int, held: int, on_progress: Callable[[int], None]
    ) -> None:
        self.target, self.skip, self.held, self.on_progress = target, skip, held, on_progress
        self.page: list[tuple[LogRecord, StoredEventBase]] = []
        self.seen = self.copied = self.skipped = 0

    def add(self, record: LogRecord, event: StoredEventBase, leaf: int) -> None:
        self.seen += 1
        if self.seen <= self.skip:
            self.skipped += leaf
            if self.seen == self.skip and self.skipped % _FINGERPRINT_MODULUS != self.held:
                raise MigrationRefused(
                    f"the partitioned log's {self.skip} events are not the old log's first "
                    f"{self.skip}: it is not a copy of this store (written since it was copied?)"
                )
            return
        self.page.append((record, event))
        if len(self.page) == limits.migration_page_size:
            self.flush()

    def flush(self) -> None:
        if self.page:
            self.target.copy_in(self.page)
            self.copied += len(self.page)
            self.page = []
            self.on_progress(self.skip + self.copied)


def _prove(target: CopyTarget, source_fingerprint: int, report: MigrationReport) -> None:
    """The audit of the copy, and the copy's fingerprint against the old log's."""
    audited = audit(target, None)
    report.findings.extend(str(finding) for finding in audited.findings)
    if audited.events != report.events:
        report.findings.append(
            f"the copy holds {audited.events} events, the old log {report.events}"
        )
    if _fingerprint(target) != source_fingerprint:
        report.findings.append("the copy's records differ from the old log's (fingerprint)")


def _fingerprint(log: EventLog) -> int:
    """The sum, modulo 2^256, of each record's leaf: equal for two logs holding the same
    records, whatever their order or partitions."""
    total = sum(_leaf(record, log.plaintext(record)) for record in merged_records(log))
    return total % _FINGERPRINT_MODULUS


def _leaf(record: LogRecord, plaintext: bytes) -> int:
    """SHA-256 of a record's stream, version and digest, as a number."""
    leaf = record.stream_id.bytes + record.version.to_bytes(8, "big") + raw_digest(plaintext)
    return int.from_bytes(hashlib.sha256(leaf).digest(), "big")
