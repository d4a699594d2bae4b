"""Casino semantics of the pure core: spend order, pro-rata wins, rollbacks and tombstones,
bonus wagering, conversion and expiry, responsible-gambling limits. No store involved."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from ledger.core import events as e
from ledger.core.decide import decide
from ledger.core.draft import Context
from ledger.core.money import CurrencyRegistry
from ledger.core.outcomes import Outcome
from ledger.core.policy import Policy, Rules
from ledger.core.validation import validate
from tests.builders import (
    EUR,
    bet,
    complete,
    deposit,
    forfeit,
    grant,
    reverse,
    rollback,
    set_limits,
    win,
    withdraw,
)

RULES = Rules(CurrencyRegistry(), Policy())
START = datetime(2026, 3, 1, tzinfo=UTC)


class CoreWallet:
    """Drives `decide` directly, keeping state and events like the shell would."""

    def __init__(self) -> None:
        self.wallet_id: UUID = uuid4()
        self.state = None
        self.now = START
        self.events: list[e.WalletEvent] = []

    def run(self, command) -> Outcome:
        validate(command, RULES)
        self.now += timedelta(seconds=1)
        context = Context(now=self.now, journal_id=uuid4(), wallet_id=self.wallet_id, rules=RULES)
        decision = decide(self.state, command, context)
        if decision.events:  # a success, or a rejection after a bonus expiry came due
            self.state = decision.state
            self.events.extend(decision.events)
        return decision.outcome

    def ok(self, *commands) -> None:
        for command in commands:
            assert self.run(command) is Outcome.OK, command

    @property
    def balances(self) -> tuple[int, int, int]:
        return self.state.cash, self.state.bonus, self.state.held

    def last(self, event_type):
        return [event for event in self.events if isinstance(event, event_type)][-1]


def test_bet_spends_cash_first_then_bonus_and_records_the_split():
    """A stake larger than cash takes the rest from bonus, and the split is on the event."""
    w = CoreWallet()
    w.ok(deposit("d", 3 * EUR), grant("g", 10 * EUR, multiplier=10), bet("b", 5 * EUR))
    placed = w.last(e.BetPlaced)
    assert (placed.cash_stake, placed.bonus_stake) == (3 * EUR, 2 * EUR)
    assert w.balances == (0, 8 * EUR, 0)


def test_win_is_split_pro_rata_with_the_bonus_share_rounded_down():
    """A win on a 1:2 cash:bonus stake pays a third to cash, the bonus share rounded down."""
    w = CoreWallet()
    w.ok(
        deposit("d", 1), grant("g", 2, multiplier=10), bet("b", 3), win("w", "b", 10, closed=False)
    )
    paid = w.last(e.WinPaid)
    assert (paid.cash_amount, paid.bonus_amount) == (4, 6)  # bonus 10*2//3 = 6, cash the rest


def test_every_event_balances_per_currency():
    """Each event's postings sum to zero, including bonus conversions and forfeits."""
    w = CoreWallet()
    w.ok(
        deposit("d", 10 * EUR),
        grant("g", 5 * EUR, multiplier=1, max_conversion=EUR),
        bet("b", 12 * EUR),
        win("w", "b", 30 * EUR),
    )
    assert all(sum(p.amount for p in event.postings) == 0 for event in w.events)
    assert any(isinstance(event, e.BonusConverted) for event in w.events)


def test_rollback_restores_the_exact_split_and_wagering_progress():
    """Rolling back a bet returns cash and bonus as taken and undoes its wagering."""
    w = CoreWallet()
    w.ok(deposit("d", 3 * EUR), grant("g", 10 * EUR, multiplier=10), bet("b", 5 * EUR))
    assert w.state.bonus_record.wagering_progress == 5 * EUR
    w.ok(rollback("rb", "b"))
    assert w.balances == (3 * EUR, 10 * EUR, 0)
    assert w.state.bonus_record.wagering_progress == 0


def test_rollback_before_bet_leaves_a_tombstone_that_voids_the_late_bet():
    """An unknown rollback target succeeds; the bet arriving later is OK but moves nothing."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), rollback("rb", "late"))
    assert w.run(bet("late", 4 * EUR)) is Outcome.OK
    assert w.balances == (10 * EUR, 0, 0)
    assert isinstance(w.events[-1], e.BetVoided)
    assert w.run(win("w", "late", 8 * EUR)) is Outcome.ALREADY_ROLLED_BACK


def test_rollbacks_of_bet_and_win_before_either_arrive_void_both():
    """When both rollbacks come first, the late bet and the late win are acknowledged only."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), rollback("rb1", "b"), rollback("rb2", "w"))
    w.ok(bet("b", 4 * EUR), win("w", "b", 8 * EUR))
    assert w.balances == (10 * EUR, 0, 0)


def test_second_rollback_of_the_same_target_moves_nothing():
    """A further rollback of a rolled-back bet succeeds without a second credit."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), bet("b", 4 * EUR), rollback("rb1", "b"), rollback("rb2", "b"))
    assert w.balances == (10 * EUR, 0, 0)
    assert isinstance(w.events[-1], e.RollbackRepeated)


def test_win_rollback_takes_the_win_back_even_into_a_negative_balance():
    """Rolling back a paid win is a reversal: it may drive cash below zero."""
    w = CoreWallet()
    w.ok(deposit("d", 5 * EUR), bet("b", 5 * EUR), win("w", "b", 20 * EUR, closed=False))
    w.ok(withdraw("wd", 20 * EUR), rollback("rb", "w"))
    assert w.balances == (-20 * EUR, 0, 20 * EUR)
    assert w.run(bet("b2", EUR, round_id="r2")) is Outcome.NEGATIVE_BALANCE


def test_win_on_a_closed_round_is_already_settled_and_an_open_round_accepts_more_wins():
    """Several wins may settle an open round; once closed, further wins are refused."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), bet("b", EUR), win("w1", "b", EUR, closed=False))
    w.ok(win("w2", "b", EUR, closed=True))
    assert w.run(win("w3", "b", EUR)) is Outcome.ALREADY_SETTLED


def test_wagering_contribution_follows_the_category_weight():
    """A table-game stake counts 10 % towards wagering, slots 100 %."""
    w = CoreWallet()
    w.ok(deposit("d", 100 * EUR), grant("g", 10 * EUR, multiplier=10))
    w.ok(bet("b1", 10 * EUR, category="table"), bet("b2", 10 * EUR, round_id="r2"))
    assert w.state.bonus_record.wagering_progress == EUR + 10 * EUR


def test_bonus_converts_up_to_max_conversion_once_wagering_is_met_and_rounds_close():
    """Met wagering converts bonus to cash only after the bonus-funded round closes."""
    w = CoreWallet()
    w.ok(grant("g", 10 * EUR, multiplier=1, max_conversion=4 * EUR), bet("b", 10 * EUR))
    assert w.state.bonus_record is not None  # round still open: no conversion yet
    w.ok(win("w", "b", 12 * EUR))
    assert w.balances == (4 * EUR, 0, 0)
    assert w.last(e.BonusForfeited).reason == "conversion_cap"


def test_bonus_expires_lazily_at_the_first_command_after_expiry():
    """An expired bonus is forfeited by the next command, before that command is decided."""
    w = CoreWallet()
    w.ok(
        deposit("d", EUR),
        grant("g", 10 * EUR, multiplier=10, expires_at=START + timedelta(hours=1)),
    )
    w.now += timedelta(hours=2)
    assert w.run(bet("b", 5 * EUR)) is Outcome.INSUFFICIENT_FUNDS  # bonus no longer counts
    assert w.last(e.BonusForfeited).reason == "expired"  # kept although the bet was refused
    assert w.balances == (EUR, 0, 0)
    assert w.run(forfeit("f")) is Outcome.INVALID_STATE  # nothing left to forfeit


def test_max_bet_of_an_active_bonus_is_a_limit():
    """Over an active bonus's max bet the stake is refused with LIMIT_EXCEEDED."""
    w = CoreWallet()
    w.ok(deposit("d", 100 * EUR), grant("g", 10 * EUR, multiplier=10, max_bet=5 * EUR))
    assert w.run(bet("b", 6 * EUR)) is Outcome.LIMIT_EXCEEDED
    w.ok(bet("b2", 5 * EUR))


def test_withdrawal_request_forfeits_the_active_bonus():
    """Asking for a withdrawal gives up an active bonus; the hold is cash only."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), grant("g", 5 * EUR, multiplier=10), withdraw("wd", 10 * EUR))
    assert w.balances == (0, 0, 10 * EUR)
    assert w.last(e.BonusForfeited).reason == "withdrawal"
    w.ok(complete("c", "wd"))
    assert w.balances == (0, 0, 0)


def test_win_after_forfeit_sends_the_bonus_share_back_to_the_house():
    """Money owed to a bonus that is gone is not credited to the player."""
    w = CoreWallet()
    w.ok(grant("g", 10 * EUR, multiplier=10), bet("b", 10 * EUR), forfeit("f"))
    w.ok(win("w", "b", 20 * EUR))
    assert w.balances == (0, 0, 0)
    assert w.last(e.WinPaid).bonus_forfeited == 20 * EUR


def test_deposit_limit_is_gross_over_a_rolling_24_hours():
    """Deposits in the last 24 h count against the limit; older ones fall out of the window."""
    w = CoreWallet()
    w.ok(
        set_limits("l", deposit_limit_24h=10 * EUR), deposit("d1", 6 * EUR), withdraw("wd", 6 * EUR)
    )
    assert w.run(deposit("d2", 5 * EUR)) is Outcome.LIMIT_EXCEEDED  # withdrawals free nothing
    w.now += timedelta(hours=24)
    w.ok(deposit("d3", 5 * EUR))


def test_lowest_of_the_deposit_limits_applies():
    """With a 7-day limit below the 24 h limit, the 7-day limit binds."""
    w = CoreWallet()
    w.ok(set_limits("l", deposit_limit_24h=10 * EUR, deposit_limit_7d=3 * EUR))
    assert w.run(deposit("d", 4 * EUR)) is Outcome.LIMIT_EXCEEDED


def test_limit_decrease_is_immediate_and_increase_waits_24_hours():
    """Tightening applies at once; loosening only after the cooling-off period."""
    w = CoreWallet()
    w.ok(set_limits("l1", deposit_limit_24h=5 * EUR))
    w.ok(set_limits("l2", deposit_limit_24h=50 * EUR))
    assert w.run(deposit("d1", 6 * EUR)) is Outcome.LIMIT_EXCEEDED
    w.now += timedelta(hours=24)
    w.ok(deposit("d2", 6 * EUR))


def test_loss_limit_counts_stakes_minus_wins():
    """A loss limit refuses the stake that would take net losses in the window over it."""
    w = CoreWallet()
    w.ok(deposit("d", 100 * EUR), set_limits("l", loss_limit_24h=10 * EUR))
    w.ok(bet("b1", 8 * EUR), win("w1", "b1", 3 * EUR))  # net loss 5
    assert w.run(bet("b2", 6 * EUR, round_id="r2")) is Outcome.LIMIT_EXCEEDED
    w.ok(bet("b3", 5 * EUR, round_id="r3"))


def test_self_exclusion_blocks_bets_and_deposits_but_not_withdrawals():
    """An excluded player cannot play or deposit but can still take money out."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), set_limits("l", self_excluded_until=START + timedelta(days=180)))
    assert w.run(bet("b", EUR)) is Outcome.PLAYER_BLOCKED
    assert w.run(deposit("d2", EUR)) is Outcome.PLAYER_BLOCKED
    w.ok(withdraw("wd", 10 * EUR))


def test_self_exclusion_can_be_extended_but_never_shortened():
    """Moving the exclusion end earlier (or removing it) while it runs is refused."""
    w = CoreWallet()
    w.ok(set_limits("l1", self_excluded_until=START + timedelta(days=30)))
    w.ok(set_limits("l2", self_excluded_until=START + timedelta(days=60)))
    assert (
        w.run(set_limits("l3", self_excluded_until=START + timedelta(days=40)))
        is Outcome.INVALID_STATE
    )
    assert w.run(set_limits("l4")) is Outcome.INVALID_STATE


def test_chargeback_is_always_applied_and_blocks_until_repaid():
    """A reversal may go negative; a deposit that restores the balance unblocks betting."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), bet("b", 10 * EUR), reverse("cb", 10 * EUR))
    assert w.balances == (-10 * EUR, 0, 0)
    assert w.run(bet("b2", EUR, round_id="r2")) is Outcome.NEGATIVE_BALANCE
    w.ok(deposit("d2", 11 * EUR), bet("b3", EUR, round_id="r3"))


def test_a_deposit_is_reversed_at_most_once_whatever_the_reversal_keys():
    """Chargebacks naming a deposit take back at most its amount, partial ones included; a
    second full chargeback under another key is INVALID_STATE and moves nothing."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR), reverse("cb1", 4 * EUR, deposit="d"))
    w.ok(reverse("cb2", 6 * EUR, deposit="d"))
    assert w.run(reverse("cb3", 10 * EUR, deposit="d")) is Outcome.INVALID_STATE
    assert w.run(reverse("cb4", 1, deposit="d")) is Outcome.INVALID_STATE
    assert w.balances == (0, 0, 0)


def test_a_reversal_of_an_unknown_deposit_is_refused_but_a_keyless_one_applies():
    """A deposit key this wallet never credited is INVALID_STATE; a correction without a
    deposit key is applied as before, even into a negative balance."""
    w = CoreWallet()
    w.ok(deposit("d", 10 * EUR))
    assert w.run(reverse("cb1", EUR, deposit="other")) is Outcome.INVALID_STATE
    w.ok(reverse("fix", 12 * EUR))
    assert w.balances == (-2 * EUR, 0, 0)


def test_eth_amounts_beyond_64_bits_are_exact():
    """Wei amounts far beyond 2**64 move exactly."""
    w = CoreWallet()
    wei = 25 * 10**18
    w.ok(deposit("d", wei, currency="ETH"))
    w.ok(bet("b", 10**19 + 1, currency="ETH"))
    assert w.state.cash == wei - 10**19 - 1
    assert wei > 2**64


def test_a_bonus_ending_below_zero_charges_the_deficit_to_cash():
    """A win rollback that takes back spent bonus money cannot leave the player blocked."""
    w = CoreWallet()
    w.ok(
        grant("g", 10 * EUR, multiplier=10),
        bet("b1", 10 * EUR),
        win("w1", "b1", 50 * EUR, closed=False),
    )
    w.ok(bet("b2", 50 * EUR, round_id="r2"), win("w2", "b2", 0), rollback("rb", "w1"))
    assert w.balances == (0, -50 * EUR, 0)
    w.ok(win("w3", "b1", 0))  # closes r1: the spent bonus is exhausted, its deficit charged
    assert w.balances == (-50 * EUR, 0, 0)
    assert w.last(e.BonusDeficitCharged).amount == 50 * EUR
    w.ok(deposit("d", 60 * EUR))
    w.ok(bet("b3", EUR, round_id="r3"))  # repaid: betting works again


def test_win_rollback_reverses_the_share_that_went_to_the_house_bonus():
    """A win whose bonus share went to the house is taken back from there, leg by leg."""
    w = CoreWallet()
    w.ok(grant("g", 10 * EUR, multiplier=10), bet("b1", 10 * EUR), forfeit("f"))
    w.ok(win("w1", "b1", 30 * EUR, closed=False), rollback("rb", "w1"))
    reversal = w.last(e.WinRolledBack)
    legs = {p.account: p.amount for p in reversal.postings}
    assert legs == {"house:games:hub88:EUR": 30 * EUR, "house:bonus:EUR": -30 * EUR}


def test_conversion_waits_for_rounds_whose_stakes_counted_towards_wagering():
    """A cash bet that meets wagering cannot convert the bonus while its round is open."""
    w = CoreWallet()
    w.ok(deposit("d", 100 * EUR), grant("g", 10 * EUR, multiplier=10), bet("b1", 100 * EUR))
    assert w.state.bonus_record is not None
    w.ok(rollback("rb", "b1"))  # the wagering is undone with the bet
    assert w.balances == (100 * EUR, 10 * EUR, 0)
    assert w.state.bonus_record.wagering_progress == 0


def test_a_refusal_appends_one_event_that_moves_nothing_and_continues_the_chain():
    """A refused bet is one CommandRefused at the next version, chained, with no postings."""
    w = CoreWallet()
    w.ok(deposit("d", 3 * EUR))
    head, version = w.state.head_hash, w.state.version
    assert w.run(bet("b", 5 * EUR)) is Outcome.INSUFFICIENT_FUNDS
    refused = w.events[-1]
    assert isinstance(refused, e.CommandRefused) and refused.postings == ()
    assert (refused.outcome, refused.command_type, refused.key) == (
        "INSUFFICIENT_FUNDS",
        "Bet",
        "b",
    )
    assert (refused.originator_version, refused.previous_hash) == (version + 1, head)
    assert w.balances == (3 * EUR, 0, 0) and "b" not in {k for _, k in w.state.bets}


def test_a_refusal_for_a_wallet_that_does_not_exist_appends_nothing():
    """No wallet, no stream to chain into: the refusal leaves no event (and opens nothing)."""
    w = CoreWallet()
    assert w.run(bet("b", EUR)) is Outcome.WRONG_CURRENCY
    assert w.events == [] and w.state is None
