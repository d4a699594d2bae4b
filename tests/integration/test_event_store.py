"""The application on the real stores (SQLite file and PostgreSQL): idempotency records,
atomic batches, reopening, hash-chain tamper detection, arbitrary-precision amounts."""

from datetime import timedelta

import msgspec
import pytest
from eventsourcing.persistence import PersistenceError

from ledger.core import events as e
from ledger.core.errors import ChainBroken, InvalidArgument
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from tests.builders import EUR, bet, deposit, grant, rollback, win, withdraw
from tests.conftest import SteppingClock, run_on_loop
from tests.integration.raw_store import RawStore


@pytest.fixture
def ledger(database_url):
    with Ledger(database_url, clock=SteppingClock()) as instance:
        yield instance


def test_identical_replay_returns_the_original_journal_and_balance_after(ledger, database_url):
    """A replay is DUPLICATE with the first journal id and balance-after, and writes nothing."""
    first = ledger.execute(deposit("d1", 10 * EUR))
    ledger.execute(deposit("d2", 5 * EUR))
    rows = RawStore(database_url).count()
    replay = ledger.execute(deposit("d1", 10 * EUR))
    assert replay.outcome is Outcome.DUPLICATE
    assert replay.journal_id == first.journal_id
    assert replay.balances_after.cash == 10 * EUR
    assert replay.balances.cash == 15 * EUR
    assert RawStore(database_url).count() == rows


def test_same_key_with_a_different_request_is_a_conflict_even_for_another_player(ledger):
    """A key names one request: other amounts or another player under it conflict."""
    ledger.execute(deposit("d1", 10 * EUR))
    assert ledger.execute(deposit("d1", 9 * EUR)).outcome is Outcome.CONFLICT
    assert ledger.execute(deposit("d1", 10 * EUR, player="p2")).outcome is Outcome.CONFLICT
    assert ledger.balances("p2", "EUR").cash == 0


def test_rejections_are_recorded_and_replayed_not_re_evaluated(ledger):
    """A resent rejected bet gets the same rejection even after the player has funds."""
    ledger.execute(deposit("d1", EUR))
    assert ledger.execute(bet("b1", 5 * EUR)).outcome is Outcome.INSUFFICIENT_FUNDS
    ledger.execute(deposit("d2", 10 * EUR))
    replay = ledger.execute(bet("b1", 5 * EUR))
    assert replay.outcome is Outcome.INSUFFICIENT_FUNDS
    assert replay.balances.cash == 11 * EUR


def test_provider_keys_are_scoped_by_provider(ledger):
    """The same transaction id from two providers is two different bets."""
    ledger.execute(deposit("d1", 10 * EUR))
    first = ledger.execute(bet("tx-1", EUR))
    other = msgspec.structs.replace(bet("tx-1", EUR), provider="evolution")
    assert first.outcome is Outcome.OK
    assert ledger.execute(other).outcome is Outcome.OK
    assert ledger.balances("p1", "EUR").cash == 8 * EUR


def test_reopening_the_store_rebuilds_the_same_balances(database_url):
    """Balances after a restart equal those before: the event stream is the truth."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        ledger.execute(grant("g1", 5 * EUR, multiplier=10))
        ledger.execute(bet("b1", 12 * EUR))
        ledger.execute(win("w1", "b1", 6 * EUR, closed=False))
        ledger.execute(withdraw("wd1", 2 * EUR))
        before = ledger.balances("p1", "EUR")
    with Ledger(database_url, clock=SteppingClock()) as reopened:
        assert reopened.balances("p1", "EUR") == before
        assert reopened.execute(rollback("rb1", "w1")).outcome is Outcome.OK


def test_eth_amounts_beyond_64_bits_round_trip_through_the_store(database_url):
    """Wei amounts over 2**64 are stored and read back exactly."""
    amount = 123 * 10**18 + 7
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        ledger.execute(deposit("d1", amount, currency="ETH"))
    with Ledger(database_url, clock=SteppingClock()) as reopened:
        assert reopened.balances("p1", "ETH").cash == amount


def test_every_stored_event_type_decodes_to_an_equal_event(ledger):
    """Each event written comes back from the store equal, field for field."""
    for command in (
        deposit("d1", 10 * EUR),
        grant("g1", EUR, multiplier=10),
        bet("b1", EUR),
        win("w1", "b1", 0),
        rollback("rb1", "unknown"),
        withdraw("wd1", EUR),
    ):
        ledger.execute(command)
    record, events = ledger.transaction("client", "d1")
    assert [type(event) for event in events] == [e.WalletOpened, e.Deposited]
    stored = ledger.wallet_events(wallet_id("p1", "EUR"))
    assert {type(event) for event in stored} >= {e.BonusGranted, e.BetPlaced, e.WinPaid}
    assert stored[: len(events)] == events
    assert record.outcome == "OK" and record.journal_id == events[0].journal_id


def test_editing_a_stored_event_breaks_the_chain(database_url):
    """Changing an amount inside a stored event is detected when the wallet is loaded."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        ledger.execute(deposit("d2", 10 * EUR))
    raw, wallet = RawStore(database_url), wallet_id("p1", "EUR")
    original = raw.state(wallet, 2)
    raw.set_state(wallet, 2, original.replace(b'"amount":10000000', b'"amount":90000000'))
    with Ledger(database_url) as reopened, pytest.raises(ChainBroken, match="v3"):
        reopened.balances("p1", "EUR")


def test_deleting_a_stored_event_breaks_the_chain(database_url):
    """A missing event leaves a version gap that loading refuses."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        for n in range(3):
            ledger.execute(deposit(f"d{n}", EUR))
    RawStore(database_url).delete(wallet_id("p1", "EUR"), 3)
    with Ledger(database_url) as reopened, pytest.raises(ChainBroken, match="version 4 follows 2"):
        reopened.balances("p1", "EUR")


def test_a_failed_batch_writes_nothing_and_the_ledger_carries_on(ledger, database_url):
    """A store failure mid-batch leaves none of the batch behind; later commands work."""
    ledger.execute(deposit("d0", 10 * EUR))
    raw = RawStore(database_url)
    raw.fail_inserts_containing("poison")
    rows = raw.count()
    batch = [deposit("d1", EUR), bet("b1", EUR), deposit("poison", EUR, player="p2")]
    with pytest.raises(PersistenceError):
        ledger.execute_batch(batch)
    assert raw.count() == rows
    assert ledger.balances("p1", "EUR").cash == 10 * EUR
    raw.heal()
    assert ledger.execute(deposit("d1", EUR)).outcome is Outcome.OK
    assert ledger.balances("p1", "EUR").cash == 11 * EUR


def test_batch_commands_apply_in_order_and_see_each_other(ledger):
    """Within a batch, a bet sees the deposit before it and a repeated key is a replay."""
    results = ledger.execute_batch(
        [deposit("d1", 5 * EUR), bet("b1", 4 * EUR), bet("b1", 4 * EUR), bet("b2", 4 * EUR)]
    )
    outcomes = [result.outcome for result in results]
    assert outcomes == [Outcome.OK, Outcome.OK, Outcome.DUPLICATE, Outcome.INSUFFICIENT_FUNDS]


def test_malformed_input_names_the_field_and_writes_nothing(ledger, database_url):
    """A bad field in a batch is refused with its position and name; nothing is recorded."""
    rows = RawStore(database_url).count()
    with pytest.raises(InvalidArgument) as caught:
        ledger.execute_batch([deposit("d1", EUR), deposit("d2", -5)])
    assert caught.value.field == "commands[1].amount"
    with pytest.raises(InvalidArgument, match="player_id: may hold only"):
        ledger.execute(deposit("d3", EUR, player="a:b"))
    assert RawStore(database_url).count() == rows


def test_a_refused_command_still_records_a_bonus_expiry_that_came_due(database_url):
    """The rejection's balances show the expired bonus gone, and the store agrees."""
    clock = SteppingClock()
    with Ledger(database_url, clock=clock) as ledger:
        ledger.execute(deposit("d1", EUR))
        ledger.execute(
            grant("g1", 5 * EUR, multiplier=10, expires_at=clock.now + timedelta(hours=1))
        )
        clock.advance(timedelta(hours=2))
        refused = ledger.execute(bet("b1", 3 * EUR))
        assert refused.outcome is Outcome.INSUFFICIENT_FUNDS
        assert (refused.balances.cash, refused.balances.bonus) == (EUR, 0)
        assert ledger.execute(bet("b1", 3 * EUR)).balances.bonus == 0  # the replay agrees
    with Ledger(database_url) as reopened:
        assert reopened.balances("p1", "EUR").bonus == 0


def test_idempotency_records_are_prefetched_in_one_query(ledger):
    """The bulk read returns exactly the existing records, across SQLite's parameter chunks."""
    from uuid import uuid4

    from ledger.service.wallets import key_record_id

    ledger.execute_batch([deposit(f"d{n}", EUR) for n in range(3)])
    wanted = [key_record_id("client", f"d{n}") for n in range(3)] + [uuid4() for _ in range(600)]
    found = ledger.loader.key_records(wanted)
    assert set(found) == set(wanted[:3])
    assert {record.key for record in found.values()} == {"d0", "d1", "d2"}


@pytest.mark.parametrize("driver", ["threaded", "event loop"])
def test_rejections_on_stale_cached_wallets_are_decided_again(database_url, driver):
    """Refusals decided on cached wallets another writer funded meanwhile are retried: OK.

    A refusal appends to its wallet's stream, so a stale cached version conflicts like any
    other write and the attempt is decided again on the fresh state."""
    with Ledger(database_url) as first, Ledger(database_url) as second:
        first.execute_batch(
            [
                deposit("seed-1", EUR),
                deposit("seed-2", EUR, player="p2"),
                deposit("seed-3", EUR, player="p3"),
            ]
        )
        second.execute_batch([deposit("top-1", 9 * EUR), deposit("top-2", 9 * EUR, player="p2")])
        bets = [
            bet("b1", 5 * EUR),
            bet("b2", 5 * EUR, player="p2"),
            bet("b3", 5 * EUR, player="p3"),
        ]
        threaded = driver == "threaded"
        results = first.execute_batch(bets) if threaded else run_on_loop(first, bets)
        outcomes = [result.outcome for result in results]
        assert outcomes == [Outcome.OK, Outcome.OK, Outcome.INSUFFICIENT_FUNDS]
        assert [result.balances.cash for result in results] == [5 * EUR, 5 * EUR, EUR]


def test_a_running_summary_equals_a_full_fold(ledger):
    """Updated after each command, the running summary ends equal to one full fold."""
    from ledger.cli.summary import RunningSummary, summarize

    running = RunningSummary()
    for command in (
        deposit("d1", 10 * EUR),
        bet("b1", 4 * EUR),
        deposit("d2", EUR, player="p2"),
        bet("b2", 50 * EUR),
    ):
        ledger.execute(command)
        running.update(ledger)
    assert running.update(ledger) == summarize(ledger)
    assert running.positions == ledger.log.heads()
