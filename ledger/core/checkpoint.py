"""Checkpoints: the event log, up to a position, summed up in one Merkle root to be signed.

Rules of the tree (the shape and hashing of RFC 6962, Certificate Transparency's log):

- Its leaves are every stored event at or before the checkpoint's log position, in log
  order. A leaf hashes 0x00 || position || stream id || version || the event's digest, so a
  leaf pins an event's content and its place in the log and in its stream; an inner node
  hashes 0x01 || left || right, so a leaf can never pass for a node.
- The tree is left-filled: a level's odd last node is carried up unchanged. Its state is a
  frontier, the roots of the perfect subtrees that make up the leaves so far (largest
  first, one per set bit of the leaf count): appending a leaf costs O(log n) and a root
  can be had at any moment. A checkpoint carries its frontier, so the next one continues
  from it and reads only the events written since.
- Every stream's head at the position is a leaf, so the root pins all stream heads: a
  history that still extends the checkpoint has exactly these leaves first. Editing,
  deleting, reordering or inserting anything at or before the position changes the root.
- A checkpoint that continues another names it (`previous`, the digest of the signed
  checkpoint): its leaves up to that one's position came from that one's frontier, not from
  the database as it was when the new one was signed.
- A partitioned log (`ledger.core.partition`) has no one log order, so it has one tree per
  partition, over that partition's positions (`PartitionedCheckpoint`). The checkpoint's root
  is the root of a tree whose leaves are the partitions' states, every partition in order,
  an empty one too: 0x02 || partition || last position || event count || the partition's
  root. Each partition's frontier is carried so the next checkpoint continues every tree.

Pure: hashing only. Signing and verifying are the shell's (`ledger.service.checkpoints`).
"""

import hashlib
import struct
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from ledger.core import limits

CHECKPOINT_FORMAT = "casino-ledger-checkpoint/1"
PARTITIONED_CHECKPOINT_FORMAT = "casino-ledger-checkpoint/2"
_NODE = b"\x01"
# A leaf's bytes before the event's digest: 0x00, position, stream id, version.
_LEAF_LAYOUT = struct.Struct(">xQ16sQ")
# A partition's leaf before its root: 0x02, partition, last position, event count.
_PARTITION_LAYOUT = struct.Struct(">cQQQ")
_PARTITION = b"\x02"
_sha256 = hashlib.sha256
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(position: int, stream_id: UUID, version: int, event_digest: bytes) -> bytes:
    """The leaf of the event at log `position`, version `version` of stream `stream_id`,
    whose digest (SHA-256 of its stored plaintext) is `event_digest`, raw bytes."""
    assert position > 0 and version > 0, (position, version)
    assert len(event_digest) == 32, event_digest
    return _sha256(_LEAF_LAYOUT.pack(position, stream_id.bytes, version) + event_digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE + left + right).digest()


class Frontier:
    """The growing tree's perfect subtrees, largest first: one per set bit of the leaf
    count, so appending a leaf is a binary increment whose carries are node hashes."""

    def __init__(self, leaf_count: int = 0, roots: tuple[bytes, ...] = ()) -> None:
        assert leaf_count >= 0 and leaf_count.bit_count() == len(roots), (leaf_count, len(roots))
        self.roots = list(roots)
        self.leaf_count = leaf_count

    def append(self, leaf: bytes) -> None:
        node, count, roots = leaf, self.leaf_count, self.roots
        while count & 1:  # a subtree of the same size ends the list: the two make one
            node = _sha256(_NODE + roots.pop() + node).digest()
            count >>= 1
        roots.append(node)
        self.leaf_count += 1

    def root(self) -> bytes:
        """The root of the tree over every leaf appended so far."""
        if not self.roots:
            return EMPTY_ROOT
        root = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            root = node_hash(left, root)
        return root


def partition_leaf_hash(partition: int, position: int, event_count: int, root: bytes) -> bytes:
    """The leaf of a partition's tree of `event_count` events up to `position`, root `root`."""
    assert partition >= 0 and position >= 0 and event_count >= 0, (partition, position)
    return _sha256(
        _PARTITION_LAYOUT.pack(_PARTITION, partition, position, event_count) + root
    ).digest()


class Checkpoint(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="format", tag=CHECKPOINT_FORMAT
):
    """What a checkpoint of a log of one partition states, and the exact bytes its signature
    covers (`signed_bytes`).

    `position` is the last log position covered and `event_count` the number of events at
    or before it (positions may have gaps); `frontier` (hex, largest subtree first) lets the
    next checkpoint continue; `public_key` (hex, raw Ed25519) names the signer; `previous` is
    the digest of the checkpoint this one continues, empty if it read the whole log.
    """

    position: int
    event_count: int
    merkle_root: str
    frontier: tuple[str, ...]
    created_at: datetime
    public_key: str
    previous: str = ""

    def frontier_state(self) -> Frontier:
        """The tree's state; ValueError if the frontier cannot be this checkpoint's."""
        if self.event_count < 0 or self.event_count.bit_count() != len(self.frontier):
            raise ValueError(
                f"a frontier of {len(self.frontier)} roots for {self.event_count} events"
            )
        return Frontier(self.event_count, tuple(bytes.fromhex(r) for r in self.frontier))

    def heads(self) -> "tuple[PartitionHead, ...]":
        """The one tree as partition 0's, the shape a partitioned checkpoint has."""
        head = PartitionHead(
            partition=0,
            position=self.position,
            event_count=self.event_count,
            merkle_root=self.merkle_root,
            frontier=self.frontier,
        )
        return (head,) if self.event_count else ()

    def problem(self) -> str | None:
        """Why the stated fields contradict each other, or None."""
        try:
            root = self.frontier_state().root().hex()
        except ValueError as error:
            return str(error)
        return None if root == self.merkle_root else "its frontier does not give its Merkle root"


class PartitionHead(msgspec.Struct, frozen=True, kw_only=True):
    """One partition's tree at a checkpoint: its last position covered, its event count,
    its root and its frontier (hex, largest subtree first)."""

    partition: int
    position: int
    event_count: int
    merkle_root: str
    frontier: tuple[str, ...]

    def frontier_state(self) -> Frontier:
        """The partition's tree; ValueError if the frontier cannot be this partition's."""
        if not 0 <= self.event_count <= self.position or (
            self.event_count.bit_count() != len(self.frontier)
        ):
            raise ValueError(
                f"partition {self.partition}: a frontier of {len(self.frontier)} roots for "
                f"{self.event_count} events up to #{self.position}"
            )
        return Frontier(self.event_count, tuple(bytes.fromhex(r) for r in self.frontier))

    def leaf(self) -> bytes:
        """This partition's leaf in the tree over every partition."""
        return partition_leaf_hash(
            self.partition, self.position, self.event_count, bytes.fromhex(self.merkle_root)
        )


class PartitionedCheckpoint(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="format", tag=PARTITIONED_CHECKPOINT_FORMAT
):
    """What a checkpoint of a partitioned log states: every partition's tree (`partitions`,
    only those holding events, in partition order) and the root over all `partition_count`
    partitions' leaves (`merkle_root`). The other fields are a `Checkpoint`'s."""

    partition_count: int
    event_count: int
    merkle_root: str
    partitions: tuple[PartitionHead, ...]
    created_at: datetime
    public_key: str
    previous: str = ""

    @property
    def position(self) -> int:
        """The sum of the partitions' last positions: grows with every checkpoint of a log."""
        return sum(head.position for head in self.partitions)

    def heads(self) -> tuple[PartitionHead, ...]:
        return self.partitions

    def problem(self) -> str | None:
        """Why the stated fields contradict each other, or None."""
        if not 0 < self.partition_count <= limits.partition_count_max or not all(
            head.position <= limits.event_position_max for head in self.partitions
        ):
            return "its partition count or a partition's position is out of range"
        numbers = [head.partition for head in self.partitions]
        if numbers != sorted(set(numbers)) or not all(
            0 <= n < self.partition_count for n in numbers
        ):
            return "its partitions are not distinct, in order and within its partition count"
        if sum(head.event_count for head in self.partitions) != self.event_count:
            return "its partitions' event counts do not add up to its event count"
        try:
            roots = [head.frontier_state().root().hex() for head in self.partitions]
        except ValueError as error:
            return str(error)
        if roots != [head.merkle_root for head in self.partitions]:
            return "a partition's frontier does not give its Merkle root"
        if partitions_root(self.partitions, self.partition_count).hex() != self.merkle_root:
            return "its partitions do not give its Merkle root"
        return None


def partitions_root(heads: Sequence[PartitionHead], partition_count: int) -> bytes:
    """The root over every partition's leaf; a partition without a head is empty."""
    by_number = {head.partition: head for head in heads}
    tree = Frontier()
    for number in range(partition_count):
        head = by_number.get(number)
        tree.append(head.leaf() if head else partition_leaf_hash(number, 0, 0, EMPTY_ROOT))
    return tree.root()


AnyCheckpoint = Checkpoint | PartitionedCheckpoint


class SignedCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A checkpoint with its Ed25519 signature (hex): the file an operator keeps."""

    checkpoint: AnyCheckpoint
    signature: str


_encoder = msgspec.json.Encoder()


def signed_bytes(checkpoint: AnyCheckpoint) -> bytes:
    """The canonical bytes a checkpoint's signature covers: compact JSON, fields in order."""
    return _encoder.encode(checkpoint)


def checkpoint_digest(signed: SignedCheckpoint) -> str:
    """Hex SHA-256 of a signed checkpoint's canonical JSON: what `previous` names."""
    return hashlib.sha256(_encoder.encode(signed)).hexdigest()


def checkpoint_of(
    frontier: Frontier, position: int, created_at: datetime, public_key: str, previous: str = ""
) -> Checkpoint:
    """The checkpoint stating frontier's tree at log position `position`."""
    return Checkpoint(
        position=position,
        event_count=frontier.leaf_count,
        merkle_root=frontier.root().hex(),
        frontier=tuple(root.hex() for root in frontier.roots),
        created_at=created_at,
        public_key=public_key,
        previous=previous,
    )


def partitioned_checkpoint_of(
    trees: dict[int, Frontier],
    positions: Sequence[int],
    created_at: datetime,
    public_key: str,
    previous: str = "",
) -> PartitionedCheckpoint:
    """The checkpoint stating each partition's tree (`trees`, by partition) at its last
    position covered (`positions`, one per partition of the log)."""
    heads = tuple(
        PartitionHead(
            partition=number,
            position=positions[number],
            event_count=tree.leaf_count,
            merkle_root=tree.root().hex(),
            frontier=tuple(root.hex() for root in tree.roots),
        )
        for number, tree in sorted(trees.items())
        if tree.leaf_count
    )
    return PartitionedCheckpoint(
        partition_count=len(positions),
        event_count=sum(head.event_count for head in heads),
        merkle_root=partitions_root(heads, len(positions)).hex(),
        partitions=heads,
        created_at=created_at,
        public_key=public_key,
        previous=previous,
    )
