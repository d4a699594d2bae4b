"""Random version-4 UUIDs for journal ids, without a system call for each.

`uuid.uuid4` reads 16 bytes from `os.urandom` per id: one getrandom call per command on the
server's event loop. Here each thread reads a block of ids' worth of bytes at once from the
same source and slices it, so the ids are exactly as unguessable as uuid4's (the operating
system's cryptographic generator, never a seeded PRNG) and collide no more often.

Two rules keep a buffered block from ever being handed out twice:
- each thread has its own block (`threading.local`): no lock, and no two threads share one;
- a child process made by fork starts with no block: the parent's unused bytes, copied into
  the child, are dropped, or parent and child would issue the same ids.
"""

import os
import threading
from uuid import UUID

from ledger.core import limits

# RFC 4122 version-4 layout: the variant bits 10 and the version nibble 0100.
_UUID4_CLEARED = ~(0xC000 << 48) & ~(0xF000 << 64)
_UUID4_SET = (0x8000 << 48) | (4 << 76)
_ID_BYTES = 16


class _Blocks(threading.local):
    """The ids of this thread's current block not yet handed out, last first."""

    def __init__(self) -> None:
        self.ids: list[UUID] = []


_blocks = _Blocks()


def _forget_blocks() -> None:
    """In a forked child: a fresh, empty block for every thread, drawn again when used."""
    global _blocks
    _blocks = _Blocks()


os.register_at_fork(after_in_child=_forget_blocks)


def random_uuid4() -> UUID:
    """A random version-4 UUID, as `uuid.uuid4()` makes, from this thread's buffered block."""
    ids = _blocks.ids
    if not ids:
        ids.extend(_block(limits.random_id_block_count))
    return ids.pop()


def _block(count: int) -> list[UUID]:
    """count fresh version-4 UUIDs from one read of the operating system's generator."""
    assert count > 0, count
    data = os.urandom(count * _ID_BYTES)
    return [
        UUID(int=int.from_bytes(data[start : start + _ID_BYTES]) & _UUID4_CLEARED | _UUID4_SET)
        for start in range(0, len(data), _ID_BYTES)
    ]
