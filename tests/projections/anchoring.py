"""Test helpers for signed checkpoints: writing one on a store, auditing a store against
some, and the findings as text."""

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.checkpoint import SignedCheckpoint
from ledger.service.application import Ledger
from ledger.service.checkpoints import write_checkpoint
from projections.audit import AuditReport, audit
from projections.checkpoint_check import NamedCheckpoint

CHECKPOINT_TIME = datetime(2026, 7, 1, tzinfo=UTC)


def checkpoint(
    url: str, key: Ed25519PrivateKey, previous: SignedCheckpoint | None = None
) -> SignedCheckpoint | None:
    """`write_checkpoint` on the store at url, continuing from previous."""
    with Ledger(url, currency_scales="ignore") as ledger:
        return write_checkpoint(ledger.log, key, CHECKPOINT_TIME, previous=previous)


def audited(
    url: str, checkpoints: list[NamedCheckpoint] = (), key: Ed25519PublicKey | None = None
) -> AuditReport:
    """The audit of the store's log alone, against checkpoints, trusting key if given."""
    with Ledger(url, currency_scales="ignore") as ledger:
        trusted = [key] if key is not None else []
        return audit(ledger.log, None, checkpoints=checkpoints, trusted_keys=trusted)


def problems(report: AuditReport) -> str:
    """Every finding of the report, a line each."""
    return "\n".join(str(finding) for finding in report.findings)
