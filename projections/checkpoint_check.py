"""The audit's anchoring check: does the history still extend each signed checkpoint?

While the audit replays the log it grows the same Merkle tree a checkpoint writer grows
(`ledger.core.checkpoint`), leaf by leaf. Just before the first event past a checkpoint's
position, the tree must have exactly the checkpoint's leaf count and root: anything at or
before that position edited, deleted, reordered, inserted or truncated changes one or the
other. A log that ends before a checkpoint's position has been truncated. A partitioned
log has a tree per partition, grown from that partition's events (which the merged replay
gives in position order), and each partition a checkpoint covers is compared so.

Checked: the checkpoint files an auditor brings (kept away from the database) and every
checkpoint stored in the log. Signatures are checked against the trusted keys when some are
given (several allow a key rotation), else against the key each checkpoint names (proving it
unaltered, not who signed).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.core.checkpoint import (
    Checkpoint,
    Frontier,
    PartitionHead,
    SignedCheckpoint,
    leaf_hash,
)
from ledger.service.checkpoints import layout_problem, log_part, signature_problem


@dataclass(frozen=True)
class NamedCheckpoint:
    """A checkpoint to check and where it came from, for the report."""

    source: str  # e.g. "checkpoint file cp.json" or "stored checkpoint 3"
    signed: SignedCheckpoint
    stored: bool = False  # read from the log itself, not brought by the auditor

    @property
    def position(self) -> int:
        return self.signed.checkpoint.position


@dataclass
class _Outcome:
    """A checkpoint's partitions left to compare, and whether one has failed."""

    named: NamedCheckpoint
    left: int
    failed: bool = False


@dataclass
class _Partition:
    """One partition's tree as the audit grows it, and the claims on it still ahead."""

    tree: Frontier = field(default_factory=Frontier)
    claims: list[tuple[PartitionHead, _Outcome]] = field(default_factory=list)


class CheckpointCheck:
    def __init__(
        self,
        checkpoints: Sequence[NamedCheckpoint],
        trusted_keys: Sequence[Ed25519PublicKey],
        find: Callable[[str], None],
        partitions: int = 1,
    ) -> None:
        self.find = find
        self.verified: list[str] = []
        # Stored single-log checkpoints on a partitioned log: signed over the single log that
        # `ledger migrate` carried over, they are checked on the old tables, not here. Any
        # other stored checkpoint of another layout is a finding (a migration makes none).
        self.skipped: list[str] = []
        self.partitions = [_Partition() for _ in range(partitions)]
        for named in sorted(checkpoints, key=lambda named: named.position):
            problem = signature_problem(named.signed, trusted_keys)
            layout = layout_problem(named.signed.checkpoint, partitions)
            if problem is None and layout is None:
                self._claim(named)
            elif problem is None and named.stored and _carried_over(named, partitions):
                self.skipped.append(f"{named.source}: {layout}")
            else:  # a checkpoint that cannot be trusted proves nothing: reported, not compared
                find(f"{named.source}: {problem or layout}")

    def _claim(self, named: NamedCheckpoint) -> None:
        heads = named.signed.checkpoint.heads()
        outcome = _Outcome(named, len(heads))
        for head in heads:
            self.partitions[head.partition].claims.append((head, outcome))
        if not heads:
            self._settle(outcome)

    def add(
        self, partition: int, position: int, stream: UUID, version: int, event_digest: bytes
    ) -> None:
        """Takes the next event of a partition, in position order; event_digest is raw
        SHA-256. Past a partition's last claim no tree is needed, and none is grown."""
        state = self.partitions[partition]
        claims = state.claims
        if not claims:
            return
        while claims and position > claims[0][0].position:
            self._compare(state, *claims.pop(0))
        state.tree.append(leaf_hash(position, stream, version, event_digest))

    def finish(self, last_positions: Sequence[int]) -> None:
        """After the last event (`last_positions`, each partition's): claims at the end are
        compared, later ones are past the end of the partition."""
        for number, state in enumerate(self.partitions):
            for head, outcome in state.claims:
                if head.position > last_positions[number]:
                    self._fail(
                        outcome,
                        f"{log_part(number, len(self.partitions))} ends at "
                        f"#{last_positions[number]}, before the checkpoint's position "
                        f"#{head.position}: history truncated",
                    )
                else:
                    self._compare(state, head, outcome)
            state.claims = []

    def _compare(self, state: _Partition, head: PartitionHead, outcome: _Outcome) -> None:
        count, root = state.tree.leaf_count, state.tree.root().hex()
        if (count, root) != (head.event_count, head.merkle_root):
            where = log_part(head.partition, len(self.partitions))
            self._fail(
                outcome,
                f"the history no longer extends it: at #{head.position} {where} holds "
                f"{count} events with root {root[:16]}…, the checkpoint "
                f"{head.event_count} with root {head.merkle_root[:16]}…",
            )
            return
        outcome.left -= 1
        if outcome.left == 0:
            self._settle(outcome)

    def _fail(self, outcome: _Outcome, problem: str) -> None:
        if not outcome.failed:  # one finding per checkpoint: its first broken partition
            outcome.failed = True
            self.find(f"{outcome.named.source}: {problem}")

    def _settle(self, outcome: _Outcome) -> None:
        if outcome.failed:
            return
        stated = outcome.named.signed.checkpoint
        lineage = f"continues {stated.previous[:16]}…" if stated.previous else "read the log"
        self.verified.append(f"{outcome.named.source} (#{stated.position}, {lineage})")


def _carried_over(named: NamedCheckpoint, partitions: int) -> bool:
    """Whether a stored checkpoint is the single log's, copied by `ledger migrate` into
    this partitioned log."""
    return isinstance(named.signed.checkpoint, Checkpoint) and partitions > 1
