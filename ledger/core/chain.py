"""Hash chaining of wallet streams.

The digest of an event is SHA-256 over its canonical encoding: compact JSON of the struct,
fields in declaration order. The event store keeps exactly these bytes (before any
encryption), so an auditor recomputes every digest from the stored plaintext alone. Each
wallet event names its predecessor's digest; the first names the stream's genesis digest,
which binds the chain to its wallet id. Editing, removing or reordering a stored event
breaks the chain at that point.
"""

import hashlib
from uuid import UUID

import msgspec

from ledger.core.events import StoredEventBase

_encoder = msgspec.json.Encoder()


def encode_event(event: StoredEventBase) -> bytes:
    """The canonical bytes of an event, as stored."""
    return _encoder.encode(event)


def digest(encoded: bytes) -> str:
    """Hex SHA-256 of an event's canonical bytes."""
    return hashlib.sha256(encoded).hexdigest()


def raw_digest(encoded: bytes) -> bytes:
    """The same SHA-256 as `digest`, as 32 bytes: what Merkle leaves hash."""
    return hashlib.sha256(encoded).digest()


def genesis_hash(wallet_id: UUID) -> str:
    """The `previous_hash` of a wallet's first event."""
    return hashlib.sha256(b"ledger-wallet-genesis:" + wallet_id.bytes).hexdigest()
