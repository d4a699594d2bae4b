"""Signed checkpoints of the event log: writing them, reading them, checking signatures.

A checkpoint (`ledger.core.checkpoint`) states the Merkle root of every event up to a log
position; it is signed with an Ed25519 key read from a file, appended to the log as a
`CheckpointRecorded` event and, optionally, written to a file the operator keeps elsewhere.
`ledger audit --checkpoint FILE` then proves the history still extends it.

A checkpoint continues from the previous one its writer holds outside the database (the
server's last, or the operator's newest file): it reads only the events written since, and
what an insider did to the log at or before that position cannot be signed over, since those
leaves come from the previous checkpoint's frontier, not from the database. Checkpoints
stored in the log are never continued from: the insider controls them. Without a previous
checkpoint the whole log is read, and the checkpoint vouches for the log as it is then.
"""

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import uuid5

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core import limits
from ledger.core.checkpoint import (
    AnyCheckpoint,
    Checkpoint,
    Frontier,
    PartitionedCheckpoint,
    SignedCheckpoint,
    checkpoint_digest,
    checkpoint_of,
    leaf_hash,
    partitioned_checkpoint_of,
    signed_bytes,
)
from ledger.core.errors import InvalidArgument, LedgerError
from ledger.core.events import CheckpointRecorded
from ledger.event_log import AppendConflict, EventLog, log_digests
from ledger.files import read_bounded
from ledger.service.wallets import LEDGER_NAMESPACE

CHECKPOINT_STREAM_ID = uuid5(LEDGER_NAMESPACE, "checkpoints")


class CheckpointRefused(LedgerError):
    """A checkpoint cannot be written: the newest stored one does not verify, or another
    writer appended one at the same moment."""


# Keys.


def generate_key(path: Path) -> Ed25519PublicKey:
    """Writes a new private key to path (PEM, mode 0600, never overwriting) and its public
    key to path.pub; returns the public key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise InvalidArgument("key_file", f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(private)
    public = key.public_key()
    Path(f"{path}.pub").write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file; anything else is refused naming the file."""
    data = read_bounded(path, limits.key_file_size_max, field="signing_key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("signing_key", f"{path} holds no PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument("signing_key", f"{path} is not an Ed25519 key")
    return key


def load_verify_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (a private key's file gives its public key)."""
    data = read_bounded(path, limits.key_file_size_max, field="verify_key")
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("verify_key", f"{path} holds no PEM key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument("verify_key", f"{path} is not an Ed25519 key")
    return key


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


# Signatures.


def sign(checkpoint: AnyCheckpoint, key: Ed25519PrivateKey) -> SignedCheckpoint:
    assert checkpoint.public_key == public_key_hex(key.public_key())
    signature = key.sign(signed_bytes(checkpoint)).hex()
    return SignedCheckpoint(checkpoint=checkpoint, signature=signature)


def signature_problem(
    signed: SignedCheckpoint, trusted: Sequence[Ed25519PublicKey] = ()
) -> str | None:
    """Why the checkpoint cannot be trusted, or None if it verifies.

    Against the trusted keys when some are given (the signer must be one of them: several
    allow a key rotation); otherwise against the key the checkpoint names, which proves it
    unaltered since signing but not who signed it. A frontier that does not give the stated
    root is refused too, so no checkpoint continues from a tree other than the signed one.
    """
    named = signed.checkpoint.public_key
    keys = {public_key_hex(key): key for key in trusted}
    if keys and named not in keys:
        return f"signed by key {named[:16]}…, not a trusted key"
    try:
        key = keys.get(named) or Ed25519PublicKey.from_public_bytes(bytes.fromhex(named))
        key.verify(bytes.fromhex(signed.signature), signed_bytes(signed.checkpoint))
    except (InvalidSignature, ValueError):
        return "its signature does not verify, or it is malformed"
    return signed.checkpoint.problem()


# Files.


def write_checkpoint_file(path: str | Path, signed: SignedCheckpoint) -> None:
    """Writes the checkpoint as indented JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(_file_bytes(signed))
    temporary.replace(path)


def keep_checkpoint_file(directory: Path, signed: SignedCheckpoint) -> Path:
    """Adds the checkpoint to a directory of kept ones, never replacing one: the name holds
    the position and the root, and a file of that name with other content is an error."""
    stated = signed.checkpoint
    path = directory / f"checkpoint-{stated.position:012d}-{stated.merkle_root[:16]}.json"
    data = _file_bytes(signed)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if path.read_bytes() != data:
            raise CheckpointRefused(f"{path} exists with another checkpoint in it") from None
        return path
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return path


def newest_kept_checkpoint(
    directory: Path, key: Ed25519PublicKey, partitions: int = 1
) -> SignedCheckpoint | None:
    """The newest checkpoint in a directory of kept ones that this key signed for a log of
    this many partitions, checked; None if there is none. A newest one that does not verify
    stops the writer, and so does a directory holding only another layout's (a log carried
    over by `ledger migrate`): starting a new chain there would drop the old one's anchor."""
    other_layout = None
    for path in sorted(directory.glob("checkpoint-*.json"), reverse=True):
        signed = read_checkpoint_file(path)
        if signed.checkpoint.public_key != public_key_hex(key):
            continue
        problem = signature_problem(signed, [key])
        if problem is not None:
            raise CheckpointRefused(f"{path}: {problem}")
        if layout_problem(signed.checkpoint, partitions) is None:
            return signed
        other_layout = other_layout or path
    if other_layout is not None:
        raise CheckpointRefused(
            f"{directory} holds this key's checkpoints of another layout only ({other_layout}"
            f", and this log has {partitions} partitions): add the checkpoint `ledger migrate "
            "--signing-key KEY --previous NEWEST --output FILE` wrote for the copy to it"
        )
    return None


def _file_bytes(signed: SignedCheckpoint) -> bytes:
    return msgspec.json.format(msgspec.json.encode(signed)) + b"\n"


def read_checkpoint_file(path: str | Path) -> SignedCheckpoint:
    data = read_bounded(path, limits.checkpoint_file_size_max, field="checkpoint")
    try:
        return msgspec.json.decode(data, type=SignedCheckpoint)
    except msgspec.DecodeError as error:
        raise InvalidArgument("checkpoint", f"{path} is not a checkpoint: {error}") from None


# The log.


def stored_checkpoints(log: EventLog) -> list[SignedCheckpoint]:
    """Every checkpoint stored in the log, oldest first."""
    return [_signed(event) for event, _ in log.read_stream(CHECKPOINT_STREAM_ID)]


def _signed(event) -> SignedCheckpoint:
    assert isinstance(event, CheckpointRecorded), type(event)
    return SignedCheckpoint(checkpoint=event.checkpoint, signature=event.signature)


def write_checkpoint(
    log: EventLog,
    key: Ed25519PrivateKey,
    now: datetime,
    *,
    previous: SignedCheckpoint | None = None,
    carried_over: SignedCheckpoint | None = None,
) -> SignedCheckpoint | None:
    """Signs a checkpoint of the log and appends it to the log, continuing from `previous`
    (which must verify against key, and cover a log of as many partitions); None if the log
    holds nothing but checkpoints since previous (or nothing at all).

    `carried_over` is instead the newest checkpoint of the log `ledger migrate` copied this
    one from, once the copy is proved: the log is read whole (its positions are new) and the
    checkpoint names that one as its previous, so the chain goes on across the migration."""
    assert previous is None or carried_over is None
    trees, covered = _continue_from(previous, key, log.partitions)
    if carried_over is not None:
        _refuse_unverified(carried_over, key)
    heads = log.heads()
    _refuse_truncated(heads, covered)
    is_new = False
    for partition, head in enumerate(heads):
        if head > covered[partition]:
            tree = trees.setdefault(partition, Frontier())
            is_new = _extend(tree, log, covered[partition], head, partition) or is_new
    if not is_new:
        return None
    named = previous or carried_over
    anchor = checkpoint_digest(named) if named is not None else ""
    signer = public_key_hex(key.public_key())
    if log.partitions == 1:
        checkpoint = checkpoint_of(trees.get(0, Frontier()), heads[0], now, signer, anchor)
    else:
        checkpoint = partitioned_checkpoint_of(trees, heads, now, signer, anchor)
    signed = sign(checkpoint, key)
    _append(log, signed, now)
    return signed


def _append(log: EventLog, signed: SignedCheckpoint, now: datetime) -> None:
    newest = log.read_stream(CHECKPOINT_STREAM_ID, newest_first=True, limit=1)
    event = CheckpointRecorded(
        originator_id=CHECKPOINT_STREAM_ID,
        originator_version=(newest[0][0].originator_version if newest else 0) + 1,
        recorded_at=now,
        checkpoint=signed.checkpoint,
        signature=signed.signature,
    )
    try:
        log.append([event])
    except AppendConflict:
        raise CheckpointRefused("another checkpoint was written at the same moment") from None


def _continue_from(
    previous: SignedCheckpoint | None, key: Ed25519PrivateKey, partitions: int
) -> tuple[dict[int, Frontier], list[int]]:
    """Each partition's tree and last position covered: previous's, which must be this key's,
    verify and cover a log of as many partitions, or empty ones (the whole log is read)."""
    covered = [0] * partitions
    if previous is None:
        return {}, covered
    stated = previous.checkpoint
    problem = signature_problem(previous, [key.public_key()]) or layout_problem(stated, partitions)
    if problem is not None:
        raise CheckpointRefused(
            f"the previous checkpoint (#{stated.position}) cannot be continued: {problem}"
        )
    trees = {}
    for head in stated.heads():
        trees[head.partition] = head.frontier_state()
        covered[head.partition] = head.position
    if isinstance(stated, Checkpoint):  # positions may have gaps: the last one covered
        covered[0] = stated.position
    return trees, covered


def _refuse_unverified(signed: SignedCheckpoint, key: Ed25519PrivateKey) -> None:
    problem = signature_problem(signed, [key.public_key()])
    if problem is not None:
        raise CheckpointRefused(f"the carried-over checkpoint cannot be named: {problem}")


def layout_problem(stated: AnyCheckpoint, partitions: int) -> str | None:
    """Why a checkpoint cannot be of a log of this many partitions, or None: one signed over
    the single log before `ledger migrate` cannot be checked against the partitioned copy."""
    count = stated.partition_count if isinstance(stated, PartitionedCheckpoint) else 1
    if count == partitions:
        return None
    return (
        f"it covers a log of {count} partitions and this store's has {partitions} (a log "
        "carried over by `ledger migrate` starts a new chain of checkpoints)"
    )


def log_part(partition: int, partitions: int) -> str:
    """How a report names a partition: "partition N of the log", or "the log" if it is the
    only one."""
    return f"partition {partition} of the log" if partitions > 1 else "the log"


def _refuse_truncated(heads: Sequence[int], covered: Sequence[int]) -> None:
    """Refuses a log whose heads do not reach the previous checkpoint's, or are not as many."""
    if len(heads) != len(covered):  # the heads table changed under a running process
        raise CheckpointRefused(
            f"the log has {len(heads)} partitions now and had {len(covered)} when it was "
            "opened: its heads table was changed; run `ledger audit`"
        )
    for partition, (head, start) in enumerate(zip(heads, covered, strict=True)):
        if head < start:
            raise CheckpointRefused(
                f"{log_part(partition, len(heads))} ends at #{head}, before the previous "
                f"checkpoint's position #{start}: it has been truncated; run `ledger audit` "
                "with that checkpoint"
            )


def _extend(frontier: Frontier, log: EventLog, start: int, head: int, partition: int) -> bool:
    """Appends the leaves of a partition's events after start up to head; False if they were
    only the checkpoint stream's own (nothing new to pin). A partitioned log's positions
    leave no gap, so one there is a deleted row, never signed over."""
    is_new, read = False, 0
    for record, digest in log_digests(log, start, head, partition):
        frontier.append(leaf_hash(record.position, record.stream_id, record.version, digest))
        is_new = is_new or record.stream_id != CHECKPOINT_STREAM_ID
        read += 1
    if log.partitions > 1 and read != head - start:
        raise CheckpointRefused(
            f"partition {partition} of the log holds {read} events from #{start + 1} to "
            f"#{head}, where positions leave no gap: rows were deleted, it has been "
            "truncated; run `ledger audit` with the previous checkpoint"
        )
    return is_new
