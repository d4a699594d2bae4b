"""The audit's anchoring check: does the history still extend each signed checkpoint?

While the audit replays the log it grows the same Merkle tree a checkpoint writer grows
(`ledger.core.checkpoint`), leaf by leaf. Just before the first event past a checkpoint's
position, the tree must have exactly the checkpoint's leaf count and root: anything at or
before that position edited, deleted, reordered, inserted or truncated changes one or the
other. A log that ends before a checkpoint's position has been truncated.

Checked: the checkpoint files an auditor brings (kept away from the database) and every
checkpoint stored in the log. Signatures are checked against the trusted keys when some are
given (several allow a key rotation), else against the key each checkpoint names (proving it
unaltered, not who signed).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.core.checkpoint import Frontier, SignedCheckpoint, leaf_hash
from ledger.service.checkpoints import signature_problem


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
        trusted_keys: Sequence[Ed25519PublicKey],
        find: Callable[[str], None],
    ) -> None:
        self.find = find
        self.frontier = Frontier()
        self.verified: list[str] = []
        self.pending = []
        for named in sorted(checkpoints, key=lambda named: named.position):
            problem = signature_problem(named.signed, trusted_keys)
            if problem is None:
                self.pending.append(named)
            else:  # a checkpoint that cannot be trusted proves nothing: reported, not compared
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
                self.find(
                    f"{named.source}: the log ends at #{last_position}, before "
                    f"the checkpoint's position #{named.position}: history truncated"
                )
            else:
                self._compare(named)
        self.pending = []

    def _compare(self, named: NamedCheckpoint) -> None:
        stated = named.signed.checkpoint
        count, root = self.frontier.leaf_count, self.frontier.root().hex()
        if (count, root) == (stated.event_count, stated.merkle_root):
            lineage = f"continues {stated.previous[:16]}…" if stated.previous else "read the log"
            self.verified.append(f"{named.source} (#{stated.position}, {lineage})")
            return
        self.find(
            f"{named.source}: the history no longer extends it: at #{stated.position} the "
            f"log holds {count} events with root {root[:16]}…, the checkpoint "
            f"{stated.event_count} with root {stated.merkle_root[:16]}…"
        )
