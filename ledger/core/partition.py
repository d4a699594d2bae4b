"""Which partition of a partitioned event log a stream's events live in. Pure.

A partition is `first 8 bytes of SHA-256(stream id) mod P`, P fixed for a store's life (a
store records its P when it is created): shards own whole partitions, so resharding moves
partitions and never re-hashes a stream. Every event lives in its stream's partition except
an idempotency record (`CommandRecorded`), which lives in its wallet's: a command's events
and its record are then written to one partition, one shard, in one transaction.
"""

import hashlib
from uuid import UUID

from ledger.core.events import CommandRecorded, StoredEventBase

# The partitions of a store created today; a store keeps the count it was created with.
PARTITION_COUNT = 256


def partition_of(stream_id: UUID, partitions: int) -> int:
    """The partition, 0 to partitions - 1, of the stream `stream_id` (or of a wallet's)."""
    assert partitions > 0, partitions
    head = hashlib.sha256(stream_id.bytes).digest()[:8]
    return int.from_bytes(head, "big") % partitions


def partition_stream(event: StoredEventBase) -> UUID:
    """The stream whose partition holds `event`: its own, or for an idempotency record the
    wallet (or suspense item) the command wrote to."""
    if isinstance(event, CommandRecorded):
        return event.wallet_id
    return event.originator_id
