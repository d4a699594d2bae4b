"""A rollback whose target key belongs to another player's bet or win is CONFLICT: no
tombstone in the caller's wallet, no refund, nothing moved for anyone (docs/contract.md,
Idempotency)."""

from msgspec.structs import replace

from ledger.core.events import CommandRefused, RollbackTombstoned
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from projections.audit import audit
from tests.builders import EUR, bet, deposit, rollback, win
from tests.conftest import SteppingClock


def _events(ledger: Ledger, player: str, currency: str = "EUR") -> list:
    return ledger.wallet_events(wallet_id(player, currency))


def test_another_players_bet_is_conflict_and_leaves_no_tombstone(database_url):
    """P2 rolling back P1's bet is CONFLICT (and stays so on resend); P2's later win naming
    it is BET_NOT_FOUND, not ALREADY_ROLLED_BACK; P1 can still roll it back."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        ledger.execute_batch(
            [deposit("d1", 10 * EUR), bet("b1", 4 * EUR), deposit("d2", 10 * EUR, player="p2")]
        )
        foreign = rollback("rb-p2", "b1", player="p2")
        refused = ledger.execute(foreign)
        assert (refused.outcome, refused.balances.cash) == (Outcome.CONFLICT, 10 * EUR)
        assert ledger.execute(foreign).outcome is Outcome.CONFLICT
        assert not any(isinstance(ev, RollbackTombstoned) for ev in _events(ledger, "p2"))
        assert isinstance(_events(ledger, "p2")[-1], CommandRefused)
        assert ledger.execute(win("w-p2", "b1", EUR, player="p2")).outcome is Outcome.BET_NOT_FOUND
        assert ledger.balances("p1", "EUR").cash == 6 * EUR
        assert ledger.execute(rollback("rb-p1", "b1")).balances.cash == 10 * EUR
        report = audit(ledger.log, None)
    assert report.passed, report.findings


def test_the_owner_is_known_inside_one_batch_and_without_a_wallet(database_url):
    """The target's owner counts when its bet is earlier in the same batch, and CONFLICT
    comes before WRONG_CURRENCY for a caller with no wallet; another currency's wallet of
    the same player is another wallet too."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        results = ledger.execute_batch(
            [
                deposit("d1", 10 * EUR),
                bet("b1", EUR),
                rollback("rb-nowallet", "b1", player="p3"),
                deposit("d-usd", 10 * EUR, currency="USD"),
            ]
        )
        assert results[2].outcome is Outcome.CONFLICT
        assert ledger.wallet("p3", "EUR") is None
        usd = replace(rollback("rb-usd", "b1"), currency="USD")
        assert ledger.execute(usd).outcome is Outcome.CONFLICT
        assert ledger.balances("p1", "USD").cash == 10 * EUR
