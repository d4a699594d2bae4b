"""Hash chaining of wallet streams.

The digest of an event is SHA-256 over its canonical encoding: compact JSON of the struct,
fields in declaration order. The event store keeps exactly these bytes (before any
encryption), so an auditor recomputes every digest from the stored plaintext alone. Each
wallet event names its predecessor's digest; the first names the stream's genesis digest,
which binds the chain to its wallet id. Editing, removing or reordering a stored event
breaks the chain at that point.

One encoding per event: a new event is encoded when its digest is taken (`chain_digest`, as
`decide` folds it), and those bytes are kept until the store maps the event (`encode_event`)
instead of encoding it a second time. They are kept by the event object's identity, beside
the event itself so that its id cannot be reused while the entry lives; an entry is taken
out when the store asks, and the whole memo is dropped when it reaches
`limits.encoding_memo_size_max` entries, so events decided but never stored (an attempt
that lost a race) cannot pile up. Every operation on the memo is one dict call, atomic under
the interpreter lock, so the thread that decides and the one that stores may share it; a
miss only means the same bytes are encoded again. Events are frozen, so kept bytes never
go stale.
"""

import hashlib
from uuid import UUID

import msgspec

from ledger.core import limits
from ledger.core.events import StoredEventBase

_encoder = msgspec.json.Encoder()
_kept: dict[int, tuple[StoredEventBase, bytes]] = {}  # id(event) -> (event, its bytes)


def encode_event(event: StoredEventBase) -> bytes:
    """The canonical bytes of an event, as stored: those `chain_digest` kept for this very
    event if it did (and they are handed over once), else encoded now."""
    entry = _kept.pop(id(event), None)
    if entry is not None and entry[0] is event:
        return entry[1]
    return _encoder.encode(event)


def chain_digest(event: StoredEventBase) -> str:
    """The digest of a new event, which its successor names; the canonical bytes it is
    computed over are kept for the store's `encode_event`."""
    encoded = _encoder.encode(event)
    if len(_kept) >= limits.encoding_memo_size_max:
        _kept.clear()
    _kept[id(event)] = (event, encoded)
    return digest(encoded)


def digest(encoded: bytes) -> str:
    """Hex SHA-256 of an event's canonical bytes."""
    return hashlib.sha256(encoded).hexdigest()


def raw_digest(encoded: bytes) -> bytes:
    """The same SHA-256 as `digest`, as 32 bytes: what Merkle leaves hash."""
    return hashlib.sha256(encoded).digest()


def genesis_hash(wallet_id: UUID) -> str:
    """The `previous_hash` of a wallet's first event."""
    return hashlib.sha256(b"ledger-wallet-genesis:" + wallet_id.bytes).hexdigest()
