"""Loading wallet streams: fold stored events, verifying the hash chain as it goes.

The loader reads each stream through the event-log port with every event's canonical bytes,
because the chain is defined over each record's stored plaintext and the fold needs it.
States are cached (bounded LRU); a cached state may be stale when another process writes
the same wallet, which the append's optimistic concurrency check catches.
"""

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.core import limits
from ledger.core.chain import digest
from ledger.core.commands import (
    COMMAND_TYPES,
    AttributeSuspense,
    Command,
    HoldInSuspense,
    ReturnSuspense,
    idempotency_scope,
)
from ledger.core.events import CommandRecorded, WalletEvent
from ledger.core.evolve import evolve
from ledger.core.state import SuspenseItem, WalletState
from ledger.core.suspense import evolve_item
from ledger.event_log import EventLog

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:casino-ledger")


# Stream ids are SHA-1 based (uuid5) and asked for several times per command (locks,
# prefetch, decide): remembered, since they never change.
@lru_cache(maxsize=limits.id_cache_size_max)
def wallet_id(player_id: str, currency: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"wallet\x1f{player_id}\x1f{currency}")


def suspense_item_id(currency: str, key: str) -> UUID:
    """The stream of the suspense item opened by the HoldInSuspense with this key."""
    return uuid5(LEDGER_NAMESPACE, f"suspense\x1f{currency}\x1f{key}")


def command_stream_ids(command: Command) -> tuple[UUID, ...]:
    """The streams a command may append to: the ones its process must serialise on."""
    # Asked several times per command (locks, partitions, records): the common case, a
    # command on its wallet alone, is told apart by one type lookup, not three isinstance.
    if type(command) in _WALLET_ONLY:
        return (wallet_id(command.player_id, command.currency),)
    if isinstance(command, HoldInSuspense):
        return (suspense_item_id(command.currency, command.idempotency_key),)
    if isinstance(command, ReturnSuspense):
        return (suspense_item_id(command.currency, command.item_key),)
    wallet = wallet_id(command.player_id, command.currency)
    if isinstance(command, AttributeSuspense):
        return (wallet, suspense_item_id(command.currency, command.item_key))
    return (wallet,)


# The command types whose only stream is their player's wallet (not their subclasses).
_WALLET_ONLY = frozenset(COMMAND_TYPES) - {HoldInSuspense, ReturnSuspense, AttributeSuspense}


def key_record_id(scope: str, key: str) -> UUID:
    """The stream of the idempotency record of (scope, key): `uuid5(LEDGER_NAMESPACE,
    "key\x1f{scope}\x1f{key}")`, built from its integer (`key_record_int`) because `uuid5`
    takes the same SHA-1 the long way round, once for every command. Not memoised like the
    wallet ids: nearly every key is new, so a cache would only hold garbage for the
    collector."""
    return UUID(int=key_record_int(scope, key))


def key_record_int(scope: str, key: str) -> int:
    """`key_record_id(scope, key).int`, without building the UUID: the audit derives one per
    record it reads, and `uuid5` costs three times as much (the same SHA-1, then the
    version and variant bits set as RFC 4122 says)."""
    name = f"key\x1f{scope}\x1f{key}".encode()
    number = int.from_bytes(hashlib.sha1(LEDGER_NAMESPACE.bytes + name).digest()[:16], "big")
    return number & _UUID5_CLEARED | _UUID5_SET


_UUID5_CLEARED = ~(0xC000 << 48) & ~(0xF000 << 64)  # the variant and version fields
_UUID5_SET = (0x8000 << 48) | (5 << 76)  # variant RFC 4122, version 5


def command_record_id(command: Command) -> UUID:
    return key_record_id(idempotency_scope(command), command.idempotency_key)


class WalletCache:
    """A bounded, thread-safe LRU of wallet states that never moves a wallet backwards.

    A wallet that just lost an optimistic-concurrency race is marked contended for a
    while: another process is writing it too, so its cached state is read forward from
    the store before each decision instead of being trusted. Without this, the process
    with the warm cache keeps winning and the other one starves through its retries.
    """

    def __init__(self, size_max: int = limits.wallet_cache_size_max) -> None:
        assert size_max > 0
        self._states: OrderedDict[UUID, WalletState] = OrderedDict()
        self._contended: OrderedDict[UUID, float] = OrderedDict()
        self._size_max = size_max
        self._lock = threading.Lock()

    def mark_contended(self, wallet: UUID) -> None:
        """Evicts the wallet and distrusts its cached state for a while."""
        with self._lock:
            self._states.pop(wallet, None)
            self._contended[wallet] = time.monotonic() + limits.wallet_contention_s
            self._contended.move_to_end(wallet)
            while len(self._contended) > limits.wallet_contended_count_max:
                self._contended.popitem(last=False)

    def is_contended(self, wallet: UUID) -> bool:
        with self._lock:
            until = self._contended.get(wallet)
            if until is None:
                return False
            if until < time.monotonic():
                del self._contended[wallet]
                return False
            return True

    def get(self, wallet: UUID) -> WalletState | None:
        with self._lock:
            state = self._states.get(wallet)
            if state is not None:
                self._states.move_to_end(wallet)
            return state

    def put(self, state: WalletState) -> None:
        with self._lock:
            cached = self._states.get(state.wallet_id)
            if cached is not None and cached.version >= state.version:
                return
            self._states[state.wallet_id] = state
            self._states.move_to_end(state.wallet_id)
            while len(self._states) > self._size_max:
                self._states.popitem(last=False)


class WalletLoader:
    def __init__(self, log: EventLog) -> None:
        self.log = log

    def fold(self, wallet: UUID, state: WalletState | None = None) -> WalletState | None:
        """Applies the wallet's stored events after state's version (all if state is None)."""
        after = state.version if state is not None else 0
        for event, plaintext in self.log.read_stream(wallet, after=after):
            assert isinstance(event, WalletEvent), type(event)
            state = evolve(state, event, digest(plaintext))
        return state

    def fold_all(self, bases: dict[UUID, WalletState | None]) -> dict[UUID, WalletState | None]:
        """Each wallet's current state, folded forward from its base (from the start of the
        stream for None); None for a wallet not yet opened."""
        return {wallet: self.fold(wallet, base) for wallet, base in bases.items()}

    def fold_item(self, item_id: UUID) -> SuspenseItem | None:
        """A suspense item from its (at most two) stored events, chain checked."""
        item = None
        for event, plaintext in self.log.read_stream(item_id):
            assert isinstance(event, WalletEvent), type(event)
            item = evolve_item(item, event, digest(plaintext))
        return item

    def key_records(
        self, record_ids: list[UUID], near: Sequence[UUID] = ()
    ) -> dict[UUID, CommandRecorded]:
        """The idempotency records that exist among record_ids, fetched in one query; on a
        distributed log, looked for in the partitions of the streams `near` only."""
        found = {}
        for event in self.log.first_events(record_ids, near):
            assert isinstance(event, CommandRecorded), type(event)
            found[event.originator_id] = event
        return found

    def key_record(self, record_id: UUID) -> CommandRecorded | None:
        """The idempotency record `record_id`, if written: read as a first event, since a
        partitioned log keeps it in its wallet's partition, not its own stream's."""
        return self.key_records([record_id]).get(record_id)
