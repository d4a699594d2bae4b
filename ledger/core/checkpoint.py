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

Pure: hashing only. Signing and verifying are the shell's (`ledger.checkpoints`).
"""

import hashlib
from datetime import datetime
from uuid import UUID

import msgspec

CHECKPOINT_FORMAT = "casino-ledger-checkpoint/1"
_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(position: int, stream_id: UUID, version: int, event_digest: str) -> bytes:
    """The leaf of the event at log `position`, version `version` of stream `stream_id`."""
    assert position > 0 and version > 0, (position, version)
    return hashlib.sha256(
        _LEAF + position.to_bytes(8, "big") + stream_id.bytes + version.to_bytes(8, "big")
        + bytes.fromhex(event_digest)
    ).digest()  # fmt: skip


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


class Frontier:
    """The growing tree's perfect subtrees: `roots[i]` covers `sizes[i]` leaves."""

    def __init__(self, leaf_count: int = 0, roots: tuple[bytes, ...] = ()) -> None:
        self.sizes = _subtree_sizes(leaf_count)
        assert len(self.sizes) == len(roots), (leaf_count, len(roots))
        self.roots = list(roots)
        self.leaf_count = leaf_count

    def append(self, leaf: bytes) -> None:
        self.roots.append(leaf)
        self.sizes.append(1)
        while len(self.sizes) > 1 and self.sizes[-1] == self.sizes[-2]:
            right, size = self.roots.pop(), self.sizes.pop()
            self.roots[-1] = node_hash(self.roots[-1], right)
            self.sizes[-1] += size
        self.leaf_count += 1

    def root(self) -> bytes:
        """The root of the tree over every leaf appended so far."""
        if not self.roots:
            return EMPTY_ROOT
        root = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            root = node_hash(left, root)
        return root


def _subtree_sizes(leaf_count: int) -> list[int]:
    """The perfect subtrees of a left-filled tree of leaf_count leaves, largest first."""
    assert leaf_count >= 0
    return [1 << bit for bit in reversed(range(leaf_count.bit_length())) if leaf_count >> bit & 1]


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint states, and the exact bytes its signature covers (`signed_bytes`).

    `position` is the last log position covered and `event_count` the number of events at
    or before it (positions may have gaps); `frontier` (hex, largest subtree first) lets the
    next checkpoint continue; `public_key` (hex, raw Ed25519) names the signer.
    """

    format: str = CHECKPOINT_FORMAT
    position: int
    event_count: int
    merkle_root: str
    frontier: tuple[str, ...]
    created_at: datetime
    public_key: str

    def frontier_state(self) -> Frontier:
        return Frontier(self.event_count, tuple(bytes.fromhex(r) for r in self.frontier))


class SignedCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A checkpoint with its Ed25519 signature (hex): the file an operator keeps."""

    checkpoint: Checkpoint
    signature: str


_encoder = msgspec.json.Encoder()


def signed_bytes(checkpoint: Checkpoint) -> bytes:
    """The canonical bytes a checkpoint's signature covers: compact JSON, fields in order."""
    return _encoder.encode(checkpoint)


def checkpoint_of(frontier: Frontier, position: int, created_at: datetime, public_key: str):
    """The checkpoint stating frontier's tree at log position `position`."""
    return Checkpoint(
        position=position,
        event_count=frontier.leaf_count,
        merkle_root=frontier.root().hex(),
        frontier=tuple(root.hex() for root in frontier.roots),
        created_at=created_at,
        public_key=public_key,
    )
