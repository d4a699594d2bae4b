"""Wallet locks inside one process: threads wait for each other, the event loop's writer
never waits.

Threads (`Ledger.execute_validated`) take striped locks (`wallet.int % STRIPES`): two
writers of one wallet serialise instead of losing a race in the store and retrying. The
event loop's writer (the server's group commit, several groups in flight) holds a stripe
for all of its attempts at once, counted: two of its attempts may share a stripe, because
the committer keeps the wallets of its groups in flight disjoint, and that disjointness is
checked per wallet here, exactly. A stripe a thread holds is an error for the loop, never a
wait: waiting would stall the loop, and the task holding the lock could be the one the loop
cannot resume.
"""

import threading
from collections.abc import Iterator, Set
from contextlib import contextmanager
from uuid import UUID

STRIPES = 256


class WalletLocks:
    def __init__(self) -> None:
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        self._loop_counts: dict[int, int] = {}  # stripe -> the loop's attempts holding it
        self._loop_wallets: set[UUID] = set()  # wallets of the loop's attempts in flight

    def _stripes_of(self, wallets: Set[UUID]) -> list[int]:
        return sorted({wallet.int % STRIPES for wallet in wallets})

    @contextmanager
    def held(self, wallets: Set[UUID]) -> Iterator[None]:
        """For a thread: waits for the wallets' stripes, taken in a fixed order so batches
        never deadlock."""
        locks = [self._stripes[index] for index in self._stripes_of(wallets)]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    @contextmanager
    def held_by_loop(self, wallets: Set[UUID]) -> Iterator[None]:
        """For the event loop's writer, on the loop's thread only: RuntimeError, holding
        nothing, if a thread holds one of the stripes or another of the loop's attempts
        holds one of the wallets."""
        if not self._loop_wallets.isdisjoint(wallets):
            raise RuntimeError(
                "two attempts in flight on the event loop share a wallet: the group "
                "committer must keep its groups' wallets disjoint"
            )
        stripes = self._stripes_of(wallets)
        self._take_for_loop(stripes)
        self._loop_wallets.update(wallets)
        try:
            yield
        finally:
            self._loop_wallets.difference_update(wallets)
            self._release_for_loop(stripes)

    def _take_for_loop(self, stripes: list[int]) -> None:
        for taken, index in enumerate(stripes):
            if index not in self._loop_counts and not self._stripes[index].acquire(blocking=False):
                self._release_for_loop(stripes[:taken])
                raise RuntimeError(
                    "a wallet lock is held by another writer: the event loop's writer must be "
                    "its process's only one (group commit on)"
                )
            self._loop_counts[index] = self._loop_counts.get(index, 0) + 1

    def _release_for_loop(self, stripes: list[int]) -> None:
        for index in reversed(stripes):
            count = self._loop_counts.pop(index) - 1
            if count:
                self._loop_counts[index] = count
            else:
                self._stripes[index].release()
