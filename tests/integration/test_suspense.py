"""Suspense on the real stores: unattributable money sits in `suspense:{ccy}`, is resolved
exactly once (to a player as a late deposit, or back to its rail), and audits clean."""

import threading
from collections import Counter
from datetime import timedelta

import msgspec
import pytest

from ledger.core import events as e
from ledger.core.errors import InvalidArgument
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.wallets import suspense_item_id, wallet_id
from projections.audit import audit
from tests.builders import EUR, attribute, deposit, give_back, hold, reverse, set_limits
from tests.conftest import SteppingClock


@pytest.fixture
def ledger(database_url):
    with Ledger(database_url, clock=SteppingClock()) as instance:
        yield instance


def _postings(ledger: Ledger, stream) -> dict[str, int]:
    totals: dict[str, int] = {}
    for event in ledger.wallet_events(stream):
        for posting in event.postings:
            totals[posting.account] = totals.get(posting.account, 0) + posting.amount
    return {account: amount for account, amount in totals.items() if amount}


def _item_stream(item: str):
    return suspense_item_id("EUR", item)


def test_held_money_moves_from_the_rail_to_suspense_and_touches_no_player(ledger):
    """A hold posts chain -> suspense on the item's own stream; no wallet is opened."""
    result = ledger.execute(hold("tx1:0", 7 * EUR))
    assert result.outcome is Outcome.OK and result.journal_id is not None
    assert _postings(ledger, _item_stream("tx1:0")) == {
        "chain:ethereum:EUR": -7 * EUR,
        "suspense:EUR": 7 * EUR,
    }
    assert ledger.wallet("", "EUR") is None
    assert ledger.execute(hold("tx1:0", 7 * EUR)).outcome is Outcome.DUPLICATE


def test_attribution_is_a_late_deposit_that_closes_the_item(ledger):
    """Attributing moves suspense -> player cash and marks the item resolved, once."""
    ledger.execute(hold("tx1:0", 7 * EUR))
    result = ledger.execute(attribute("fix-1", "tx1:0"))
    assert result.outcome is Outcome.OK
    assert result.balances.cash == 7 * EUR
    assert _postings(ledger, wallet_id("p1", "EUR")) == {
        "suspense:EUR": -7 * EUR,
        "player:p1:cash:EUR": 7 * EUR,
    }
    resolved = ledger.wallet_events(_item_stream("tx1:0"))[-1]
    assert isinstance(resolved, e.SuspenseResolved)
    assert (resolved.resolution, resolved.player_id, resolved.postings) == ("attributed", "p1", ())
    assert resolved.journal_id == result.journal_id
    assert ledger.execute(attribute("fix-1", "tx1:0")).outcome is Outcome.DUPLICATE


def test_an_attributed_deposit_is_charged_back_once_by_its_attribution_key(ledger):
    """The attribution is a deposit of the player: a chargeback naming it applies once."""
    ledger.execute(hold("tx1:0", 7 * EUR))
    ledger.execute(attribute("fix-1", "tx1:0"))
    assert ledger.execute(reverse("cb-1", 7 * EUR, deposit="fix-1")).outcome is Outcome.OK
    assert ledger.execute(reverse("cb-2", 7 * EUR, deposit="fix-1")).outcome is (
        Outcome.INVALID_STATE
    )
    assert ledger.balances("p1", "EUR").cash == 0


def test_a_resolved_item_cannot_be_resolved_again_under_another_key(ledger):
    """A second attribution (another player, another key) or a return is INVALID_STATE."""
    ledger.execute(hold("tx1:0", 7 * EUR))
    ledger.execute(attribute("fix-1", "tx1:0"))
    assert ledger.execute(attribute("fix-2", "tx1:0", player="p2")).outcome is (
        Outcome.INVALID_STATE
    )
    assert ledger.execute(give_back("ret-1", "tx1:0")).outcome is Outcome.INVALID_STATE
    assert ledger.balances("p2", "EUR").cash == 0
    assert ledger.wallet("p2", "EUR") is None  # a rejection never opens a wallet


def test_return_pays_the_item_back_to_its_rail(ledger):
    """A return posts suspense -> the rail the money came from, and closes the item."""
    ledger.execute(hold("tx1:0", 7 * EUR))
    assert ledger.execute(give_back("ret-1", "tx1:0")).outcome is Outcome.OK
    assert _postings(ledger, _item_stream("tx1:0")) == {}
    assert ledger.execute(attribute("fix-1", "tx1:0")).outcome is Outcome.INVALID_STATE


def test_unknown_items_are_invalid_state_and_the_refusal_is_replayed(ledger):
    """An attribution of an item that does not exist is refused, and stays refused."""
    assert ledger.execute(attribute("fix-1", "nope")).outcome is Outcome.INVALID_STATE
    ledger.execute(hold("nope", EUR))
    assert ledger.execute(attribute("fix-1", "nope")).outcome is Outcome.INVALID_STATE
    assert ledger.execute(give_back("ret-1", "nope")).outcome is Outcome.OK


def test_attribution_obeys_the_deposit_rules(ledger):
    """A self-excluded player's attribution is PLAYER_BLOCKED and the item stays held."""
    until = SteppingClock().now + timedelta(days=30)
    ledger.execute(set_limits("lim", self_excluded_until=until))
    ledger.execute(hold("tx1:0", 7 * EUR))
    assert ledger.execute(attribute("fix-1", "tx1:0")).outcome is Outcome.PLAYER_BLOCKED
    assert ledger.execute(give_back("ret-1", "tx1:0")).outcome is Outcome.OK


def test_an_attribution_in_a_batch_is_seen_by_the_next_command(ledger):
    """Inside one batch, a hold, its attribution and a second attribution decide in order."""
    results = ledger.execute_batch(
        [
            hold("tx1:0", 7 * EUR),
            attribute("fix-1", "tx1:0"),
            attribute("fix-2", "tx1:0", player="p2"),
            deposit("d1", EUR),
        ]
    )
    assert [r.outcome for r in results] == [
        Outcome.OK,
        Outcome.OK,
        Outcome.INVALID_STATE,
        Outcome.OK,
    ]
    assert ledger.balances("p1", "EUR").cash == 8 * EUR


def test_suspense_commands_refuse_a_player_and_name_the_field(ledger):
    """Holds and returns belong to no player: a player_id is refused, naming the field."""
    command = hold("tx1:0", 7 * EUR)
    with pytest.raises(InvalidArgument) as error:
        ledger.execute(type(command)(**{**_fields(command), "player_id": "p1"}))
    assert error.value.field == "player_id"
    with pytest.raises(InvalidArgument) as error:
        ledger.execute(type(command)(**{**_fields(command), "reason": "no such reason!"}))
    assert error.value.field == "reason"


def test_racing_attributions_of_one_item_resolve_it_once(database_url):
    """Eight writers in four separate ledgers (no shared locks) race to attribute one item
    to eight players: the store's key on the item's version 2 lets exactly one win."""
    with Ledger(database_url) as ledger:
        ledger.execute(hold("tx1:0", 7 * EUR))
    ledgers = [Ledger(database_url) for _ in range(4)]
    outcomes: list[Outcome] = []

    def attribute_as(n: int) -> None:
        result = ledgers[n % 4].execute(attribute(f"fix-{n}", "tx1:0", player=f"p{n}"))
        outcomes.append(result.outcome)

    threads = [threading.Thread(target=attribute_as, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    credited = [n for n in range(8) if ledgers[0].balances(f"p{n}", "EUR").cash == 7 * EUR]
    for ledger in ledgers:
        ledger.close()
    assert Counter(outcomes) == {Outcome.OK: 1, Outcome.INVALID_STATE: 7}
    assert len(credited) == 1


def test_a_history_with_suspense_audits_clean_and_sums_to_zero(ledger):
    """The audit follows item streams' chains and the trial balance stays zero."""
    ledger.execute_batch([hold(f"tx{n}:0", (n + 1) * EUR) for n in range(4)])
    ledger.execute(attribute("fix-0", "tx0:0"))
    ledger.execute(give_back("ret-1", "tx1:0"))
    report = audit(ledger.log, None)
    assert report.findings == [] and report.finding_count == 0
    assert report.trial_balance == {"EUR": 0}


def _fields(command) -> dict:
    return msgspec.structs.asdict(command)
