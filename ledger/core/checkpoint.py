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

Pure: hashing only. Signing and verifying are the shell's (`ledger.service.checkpoints`).
"""

import hashlib
import struct
from datetime import datetime
from uuid import UUID

import msgspec

CHECKPOINT_FORMAT = "casino-ledger-checkpoint/1"
_NODE = b"\x01"
# A leaf's bytes before the event's digest: 0x00, position, stream id, version.
_LEAF_LAYOUT = struct.Struct(">xQ16sQ")
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


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What a checkpoint states, and the exact bytes its signature covers (`signed_bytes`).

    `position` is the last log position covered and `event_count` the number of events at
    or before it (positions may have gaps); `frontier` (hex, largest subtree first) lets the
    next checkpoint continue; `public_key` (hex, raw Ed25519) names the signer; `previous` is
    the digest of the checkpoint this one continues, empty if it read the whole log.
    """

    format: str = CHECKPOINT_FORMAT
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


class SignedCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A checkpoint with its Ed25519 signature (hex): the file an operator keeps."""

    checkpoint: Checkpoint
    signature: str


_encoder = msgspec.json.Encoder()


def signed_bytes(checkpoint: Checkpoint) -> bytes:
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
