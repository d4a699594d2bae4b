"""Wallet locks (ledger/service/wallet_locks.py): the loop's attempts share stripes but never a
wallet, and a stripe a thread holds is an error for the loop, not a wait."""

import threading
from uuid import UUID

import pytest

from ledger.service.wallet_locks import STRIPES, WalletLocks

ONE, SAME_STRIPE, OTHER = UUID(int=1), UUID(int=1 + STRIPES), UUID(int=2)


def test_the_loops_attempts_share_a_stripe_when_their_wallets_differ():
    """Two disjoint wallet sets on one stripe are both held by the loop at once."""
    locks = WalletLocks()
    with locks.held_by_loop({ONE}), locks.held_by_loop({SAME_STRIPE, OTHER}):
        pass
    with locks.held({ONE, SAME_STRIPE, OTHER}):  # all released: a thread takes them
        pass


def test_two_of_the_loops_attempts_on_one_wallet_is_an_error():
    """The committer keeps groups in flight disjoint; a breach raises instead of racing."""
    locks = WalletLocks()
    with (
        locks.held_by_loop({ONE}),
        pytest.raises(RuntimeError, match="share a wallet"),
        locks.held_by_loop({OTHER, ONE}),
    ):
        pass
    with locks.held_by_loop({ONE, OTHER}):  # the refused attempt kept nothing
        pass


def test_a_stripe_a_thread_holds_is_an_error_for_the_loop_and_releases_the_rest():
    """The loop never waits for a thread; what it took before the refusal is let go."""
    locks = WalletLocks()
    taken, release = threading.Event(), threading.Event()

    def thread_writer() -> None:
        with locks.held({OTHER}):
            taken.set()
            release.wait(5)

    holder = threading.Thread(target=thread_writer)
    holder.start()
    taken.wait(5)
    with pytest.raises(RuntimeError, match="only one"), locks.held_by_loop({ONE, OTHER}):
        pass
    release.set()
    holder.join(5)
    with locks.held({ONE}):  # stripe 1 was released after the refusal
        pass
