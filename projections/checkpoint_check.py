"""The audit's anchoring check: does the history still extend each signed checkpoint?

While the audit replays the log it grows the same Merkle tree a checkpoint writer grows
(`ledger.core.checkpoint`), leaf by leaf. Just before the first event past a checkpoint's
position, the tree must have exactly the checkpoint's leaf count and root: anything at or
before that position edited, deleted, reordered, inserted or truncated changes one or the
other. A log that ends before a checkpoint's position has been truncated.

Checked: the checkpoint files an auditor brings (kept away from the database) and every
checkpoint stored in the log. Signatures are checked against the trusted key when one is
given, else against the key each checkpoint names (proving it unaltered, not who signed).
"""

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import signature_problem
from ledger.core.checkpoint import Frontier, SignedCheckpoint, leaf_hash


@dataclass(frozen=True)
class NamedCheckpoint:
    """A checkpoint to check and where it came from, for the report."""

    source: str  # e.g. "checkpoint file cp.json" or "stored checkpoint 3"
    signed: SignedCheckpoint

    @property
    def position(self) -> int:
        return self.signed.checkpoint.position


class CheckpointCheck:
    def __init__(
        self,
        checkpoints: list[NamedCheckpoint],
        trusted_key: Ed25519PublicKey | None,
        find: Callable[[str], None],
    ) -> None:
        self.pending = sorted(checkpoints, key=lambda named: named.position)
        self.trusted_key = trusted_key
        self.find = find
        self.frontier = Frontier()
        self.verified: list[str] = []
        for named in self.pending:
            problem = signature_problem(named.signed, trusted_key)
            if problem is not None:
                find(f"{named.source}: {problem}")

    def add(self, position: int, stream: UUID, version: int, event_digest: bytes) -> None:
        """Takes the next event of the log, in log order; event_digest is raw SHA-256. Past
        the last checkpoint's position no tree is needed, and none is grown."""
        pending = self.pending
        if not pending:
            return
        while pending and position > pending[0].position:
            self._compare(pending.pop(0))
        self.frontier.append(leaf_hash(position, stream, version, event_digest))

    def finish(self, last_position: int) -> None:
        """After the last event: checkpoints at the end are compared, later ones are past
        the end of the log."""
        for named in self.pending:
            if named.position > last_position:
                self.find(f"{named.source}: the log ends at #{last_position}, before "
                          f"the checkpoint's position #{named.position}: history truncated")
            else:
                self._compare(named)
        self.pending = []

    def _compare(self, named: NamedCheckpoint) -> None:
        stated = named.signed.checkpoint
        count, root = self.frontier.leaf_count, self.frontier.root().hex()
        if (count, root) == (stated.event_count, stated.merkle_root):
            self.verified.append(f"{named.source} (#{stated.position})")
            return
        self.find(f"{named.source}: the history no longer extends it: at #{stated.position} the "
                  f"log holds {count} events with root {root[:16]}…, the checkpoint "
                  f"{stated.event_count} with root {stated.merkle_root[:16]}…")  # fmt: skip
