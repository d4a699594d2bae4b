"""Checkpoints: the log's Merkle tree (RFC 6962's shape and hashing), its frontier, and the
signature over a checkpoint's exact bytes."""

import hashlib
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from msgspec.structs import replace

from ledger.core.checkpoint import (
    EMPTY_ROOT,
    Frontier,
    checkpoint_of,
    leaf_hash,
    node_hash,
    partition_leaf_hash,
    partitioned_checkpoint_of,
)
from ledger.service.checkpoints import (
    CheckpointRefused,
    keep_checkpoint_file,
    newest_kept_checkpoint,
    public_key_hex,
    sign,
    signature_problem,
)

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's MTH, written recursively as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two below n
    return node_hash(_reference_root(leaves[:split]), _reference_root(leaves[split:]))


def _leaves(count: int) -> list[bytes]:
    return [
        leaf_hash(n, uuid4(), 1, hashlib.sha256(bytes([n % 256])).digest())
        for n in range(1, count + 1)
    ]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100])
def test_the_frontiers_root_is_rfc_6962s(count):
    """Appending leaf by leaf gives the root RFC 6962 defines for the same leaves."""
    leaves, frontier = _leaves(count), Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == _reference_root(leaves)
    assert frontier.leaf_count == count and len(frontier.roots) == count.bit_count()


def test_a_checkpoints_frontier_continues_to_the_same_root():
    """A tree resumed from a checkpoint's frontier equals one grown from the first leaf."""
    leaves, first = _leaves(45), Frontier()
    for leaf in leaves[:27]:
        first.append(leaf)
    resumed = checkpoint_of(first, 27, NOW, "00").frontier_state()
    for leaf in leaves[27:]:
        resumed.append(leaf)
    assert resumed.root() == _reference_root(leaves)


def test_a_leaf_pins_position_stream_version_and_digest():
    """Changing any part of an event's leaf changes the leaf; leaves and nodes never collide."""
    stream, digest = uuid4(), b"\xab" * 32
    leaf = leaf_hash(7, stream, 3, digest)
    assert leaf != leaf_hash(8, stream, 3, digest)
    assert leaf != leaf_hash(7, uuid4(), 3, digest)
    assert leaf != leaf_hash(7, stream, 4, digest)
    assert leaf != leaf_hash(7, stream, 3, b"\xcd" * 32)
    assert (
        leaf
        == hashlib.sha256(
            b"\x00" + (7).to_bytes(8, "big") + stream.bytes + (3).to_bytes(8, "big") + digest
        ).digest()
    )
    assert Frontier().root() == EMPTY_ROOT


def _signed(key: Ed25519PrivateKey, count: int = 5):
    frontier = Frontier()
    for leaf in _leaves(count):
        frontier.append(leaf)
    return sign(checkpoint_of(frontier, count, NOW, public_key_hex(key.public_key())), key)


def test_a_signed_checkpoint_verifies_against_its_key():
    """A fresh checkpoint verifies, against the trusted key and against the key it names."""
    key = Ed25519PrivateKey.generate()
    signed = _signed(key)
    assert signature_problem(signed, [key.public_key()]) is None
    assert signature_problem(signed) is None


def test_an_edited_checkpoint_or_another_signer_is_refused():
    """A changed root or position breaks the signature; another key is not the trusted one."""
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = _signed(key)
    broken = "its signature does not verify, or it is malformed"
    edited = replace(signed, checkpoint=replace(signed.checkpoint, position=99))
    assert signature_problem(edited, [key.public_key()]) == broken
    rooted = replace(signed, checkpoint=replace(signed.checkpoint, merkle_root="00" * 32))
    assert signature_problem(rooted) == broken
    assert "not a trusted key" in signature_problem(_signed(other), [key.public_key()])
    assert signature_problem(_signed(other), [key.public_key(), other.public_key()]) is None


def test_a_frontier_that_cannot_be_the_checkpoints_is_refused_not_a_crash():
    """A stored checkpoint with a frontier of the wrong length or not hex is reported."""
    key = Ed25519PrivateKey.generate()
    signed = _signed(key)
    short = replace(signed, checkpoint=replace(signed.checkpoint, frontier=()))
    assert signature_problem(short) == "its signature does not verify, or it is malformed"
    with pytest.raises(ValueError, match="a frontier of 0 roots for 5 events"):
        short.checkpoint.frontier_state()


def test_a_kept_checkpoint_file_is_never_replaced(tmp_path):
    """Files are named by position and root and created exclusively: the same checkpoint
    again is a no-op, another one under an existing name is refused."""
    key = Ed25519PrivateKey.generate()
    signed = _signed(key)
    path = keep_checkpoint_file(tmp_path, signed)
    assert path.name == f"checkpoint-{5:012d}-{signed.checkpoint.merkle_root[:16]}.json"
    assert keep_checkpoint_file(tmp_path, signed) == path
    other = replace(signed, signature="00" * 64)
    with pytest.raises(CheckpointRefused, match="exists with another checkpoint"):
        keep_checkpoint_file(tmp_path, other)
    assert newest_kept_checkpoint(tmp_path, key.public_key()) == signed


def _partitioned(key: Ed25519PrivateKey, sizes: dict[int, int], count: int = 8):
    trees = {}
    for partition, size in sizes.items():
        trees[partition] = Frontier()
        for leaf in _leaves(size):
            trees[partition].append(leaf)
    positions = [sizes.get(number, 0) for number in range(count)]
    stated = partitioned_checkpoint_of(trees, positions, NOW, public_key_hex(key.public_key()))
    return sign(stated, key)


def test_a_partitioned_checkpoints_root_covers_every_partition_empty_ones_too():
    """The root is RFC 6962's over one leaf per partition, an empty partition's included,
    and only partitions holding events are listed."""
    key = Ed25519PrivateKey.generate()
    signed = _partitioned(key, {1: 3, 6: 5})
    stated = signed.checkpoint
    assert [head.partition for head in stated.partitions] == [1, 6]
    assert (stated.event_count, stated.position) == (8, 8)
    leaves = [partition_leaf_hash(n, 0, 0, EMPTY_ROOT) for n in range(8)]
    for head in stated.partitions:
        leaves[head.partition] = partition_leaf_hash(
            head.partition, head.position, head.event_count, bytes.fromhex(head.merkle_root)
        )
    assert stated.merkle_root == _reference_root(leaves).hex()
    assert signature_problem(signed, [key.public_key()]) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda heads: heads[::-1], "not distinct, in order"),
        (lambda heads: [replace(heads[0], partition=99), heads[1]], "within its partition count"),
        (
            lambda heads: [replace(heads[0], merkle_root="00" * 32), heads[1]],
            "a partition's frontier does not give",
        ),
        (
            lambda heads: [replace(heads[0], frontier=heads[1].frontier[:2]), heads[1]],
            "a partition's frontier does not give",
        ),
        (lambda heads: [replace(heads[0], position=9), heads[1]], "do not give its Merkle root"),
        (lambda heads: [heads[0]], "do not add up"),
    ],
)
def test_a_partitioned_checkpoint_that_contradicts_itself_is_refused(change, problem):
    """Each way a partitioned checkpoint's fields can disagree is named, even when it is
    signed so (a signer's bug, or a forger holding the key)."""
    key = Ed25519PrivateKey.generate()
    stated = _partitioned(key, {1: 3, 6: 5}).checkpoint
    changed = replace(stated, partitions=tuple(change(list(stated.partitions))))
    found = signature_problem(sign(changed, key), [key.public_key()])
    assert found is not None and problem in found, found


@pytest.mark.parametrize(
    "change",
    [
        lambda stated: replace(stated, partition_count=2**40),
        lambda stated: replace(stated, partition_count=0, partitions=(), event_count=0),
        lambda stated: replace(
            stated, partitions=(replace(stated.partitions[0], position=2**64), stated.partitions[1])
        ),
    ],
)
def test_a_partitioned_checkpoint_out_of_range_is_a_problem_not_a_hang(change):
    """A self-signed checkpoint (a stored one, or a file audited without --verify-key)
    stating absurd counts is named at once, never looped over nor packed into a crash."""
    key = Ed25519PrivateKey.generate()
    changed = change(_partitioned(key, {1: 3, 6: 5}).checkpoint)
    found = signature_problem(sign(changed, key))
    assert found is not None and "out of range" in found, found
