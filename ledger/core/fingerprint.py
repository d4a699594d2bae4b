"""The request fingerprint stored with each outcome: same key plus different fingerprint is a
CONFLICT, same fingerprint is a replay. Canonical JSON of the command minus `occurred_at`."""

import hashlib

import msgspec

from ledger.core.commands import Command

_encoder = msgspec.json.Encoder(order="sorted")


def fingerprint(command: Command) -> str:
    """Hex SHA-256 over the command's canonical encoding, provider timestamp excluded."""
    # Most commands carry no provider timestamp: they are encoded as they are, not copied.
    canonical = command
    if command.occurred_at is not None:
        canonical = msgspec.structs.replace(command, occurred_at=None)
    return hashlib.sha256(_encoder.encode(canonical)).hexdigest()
