"""`evolve`: apply one stored event to a wallet state. It cannot fail except by assertion or
by a broken chain: all business validation happened in `decide` before the event existed.

Each event first proves it belongs (right wallet, next version, predecessor's hash), then
its effect is applied; the version and head hash move last.
"""

from collections.abc import Callable
from typing import Any

from msgspec.structs import replace

from ledger.core import events as e
from ledger.core import limits
from ledger.core.chain import genesis_hash
from ledger.core.errors import ChainBroken
from ledger.core.state import (
    BET_OPEN,
    BET_ROLLED_BACK,
    BET_SETTLED,
    WITHDRAWAL_COMPLETED,
    BetRecord,
    BonusRecord,
    RoundRecord,
    WalletState,
    WinRecord,
    WithdrawalRecord,
    to_micros,
)
from ledger.core.window import TimeWindow, window_add


def evolve(state: WalletState | None, event: e.WalletEvent, event_digest: str) -> WalletState:
    """Returns the state after `event`, whose canonical digest is `event_digest`."""
    if state is None:
        if not isinstance(event, e.WalletOpened) or event.originator_version != 1:
            raise ChainBroken(f"stream {event.originator_id} does not start with WalletOpened")
        expected_hash = genesis_hash(event.originator_id)
    else:
        _check_belongs(state, event)
        expected_hash = state.head_hash
    if event.previous_hash != expected_hash:
        raise ChainBroken(
            f"event {event.originator_id} v{event.originator_version}: previous_hash mismatch"
        )
    rule = _RULES.get(type(event))
    if rule is None:
        raise AssertionError(f"no evolve rule for {type(event).__name__}")
    applied = rule(event, state)
    return replace(applied, version=event.originator_version, head_hash=event_digest)


def _check_belongs(state: WalletState, event: e.WalletEvent) -> None:
    # Compared as ints: UUID equality is a Python-level call, and this runs for every event.
    if event.originator_id.int != state.wallet_id.int:
        raise ChainBroken(f"event of {event.originator_id} applied to wallet {state.wallet_id}")
    if event.originator_version != state.version + 1:
        raise ChainBroken(
            f"wallet {state.wallet_id}: version {event.originator_version} follows {state.version}"
        )
    assert event.currency == state.currency, (event.currency, state.currency)


# The rule for each event type, looked up by exact type: one dict lookup, where
# functools.singledispatch went through a weak-keyed cache and a wrapper on every event.
_RULES: dict[type, Callable[[Any, Any], WalletState]] = {}


def _rule(*event_types: type[e.WalletEvent]):
    """Registers the decorated function as the evolve rule of each of event_types."""

    def register(function):
        for event_type in event_types:
            assert event_type not in _RULES, event_type
            _RULES[event_type] = function
        return function

    return register


@_rule(e.WalletOpened)
def _(event: e.WalletOpened, state: None) -> WalletState:
    assert state is None
    return WalletState(
        wallet_id=event.originator_id,
        player_id=event.player_id,
        currency=event.currency,
        version=0,
        head_hash="",
    )


@_rule(e.Deposited, e.SuspenseAttributed)
def _(event: e.Deposited | e.SuspenseAttributed, state: WalletState) -> WalletState:
    window = _window_add(state.deposit_window, event, event.amount)
    return replace(
        state,
        cash=state.cash + event.amount,
        deposit_window=window,
        deposits=state.deposits.set(event.key, event.amount),
    )


@_rule(e.DepositReversed)
def _(event: e.DepositReversed, state: WalletState) -> WalletState:
    deposits = state.deposits
    if event.deposit_key is not None and event.deposit_key in deposits:
        deposits = deposits.set(event.deposit_key, deposits[event.deposit_key] - event.amount)
    return replace(state, cash=state.cash - event.amount, deposits=deposits)


@_rule(e.BetPlaced)
def _(event: e.BetPlaced, state: WalletState) -> WalletState:
    bet = BetRecord(
        round_id=event.round_id,
        cash_stake=event.cash_stake,
        bonus_stake=event.bonus_stake,
        wagering_contribution=event.wagering_contribution,
        bonus_id=event.bonus_id,
    )
    round_key = (event.provider, event.round_id)
    round_ = state.rounds.get(round_key, RoundRecord())
    assert not round_.closed, round_key
    round_ = replace(
        round_,
        bonus_stake_live=round_.bonus_stake_live + event.bonus_stake,
        wagering_live=round_.wagering_live + event.wagering_contribution,
    )
    stake = event.cash_stake + event.bonus_stake
    return replace(
        state,
        cash=state.cash - event.cash_stake,
        bonus=state.bonus - event.bonus_stake,
        bets=state.bets.set((event.provider, event.key), bet),
        **_with_round(state, round_key, round_),
        bonus_record=_wagered(state.bonus_record, event.bonus_id, event.wagering_contribution),
        loss_window=_window_add(state.loss_window, event, stake),
    )


@_rule(e.BetVoided)
def _(event: e.BetVoided, state: WalletState) -> WalletState:
    bet = BetRecord(
        round_id=event.round_id,
        cash_stake=0,
        bonus_stake=0,
        wagering_contribution=0,
        bonus_id=None,
        status=BET_ROLLED_BACK,
    )
    return replace(state, bets=state.bets.set((event.provider, event.key), bet))


@_rule(e.WinPaid)
def _(event: e.WinPaid, state: WalletState) -> WalletState:
    bet_key = (event.provider, event.bet_key)
    bet = state.bets[bet_key]
    assert bet.status != BET_ROLLED_BACK, bet_key
    win = WinRecord(
        bet_key=event.bet_key,
        cash_amount=event.cash_amount,
        bonus_amount=event.bonus_amount,
        bonus_id=bet.bonus_id,
        bonus_forfeited=event.bonus_forfeited,
    )
    round_key = (event.provider, event.round_id)
    round_ = state.rounds[round_key]
    if event.round_closed:
        round_ = replace(round_, closed=True)
    paid = event.cash_amount + event.bonus_amount + event.bonus_forfeited
    return replace(
        state,
        cash=state.cash + event.cash_amount,
        bonus=state.bonus + event.bonus_amount,
        bets=state.bets.set(bet_key, replace(bet, status=BET_SETTLED)),
        wins=state.wins.set((event.provider, event.key), win),
        **_with_round(state, round_key, round_),
        loss_window=_window_add(state.loss_window, event, -paid),
    )


@_rule(e.WinVoided)
def _(event: e.WinVoided, state: WalletState) -> WalletState:
    win = WinRecord(
        bet_key=event.bet_key, cash_amount=0, bonus_amount=0, bonus_id=None, rolled_back=True
    )
    return replace(state, wins=state.wins.set((event.provider, event.key), win))


@_rule(e.BetRolledBack)
def _(event: e.BetRolledBack, state: WalletState) -> WalletState:
    bet_key = (event.provider, event.target_key)
    bet = state.bets[bet_key]
    assert bet.status == BET_OPEN, bet_key
    round_key = (event.provider, bet.round_id)
    round_ = state.rounds[round_key]
    round_ = replace(
        round_,
        bonus_stake_live=round_.bonus_stake_live - bet.bonus_stake,
        wagering_live=round_.wagering_live - bet.wagering_contribution,
    )
    stake = bet.cash_stake + bet.bonus_stake
    return replace(
        state,
        cash=state.cash + event.cash_amount,
        bonus=state.bonus + event.bonus_amount,
        bets=state.bets.set(bet_key, replace(bet, status=BET_ROLLED_BACK)),
        **_with_round(state, round_key, round_),
        bonus_record=_wagered(state.bonus_record, bet.bonus_id, -event.wagering_contribution),
        loss_window=_window_add(state.loss_window, event, -stake),
    )


@_rule(e.WinRolledBack)
def _(event: e.WinRolledBack, state: WalletState) -> WalletState:
    win_key = (event.provider, event.target_key)
    win = state.wins[win_key]
    assert not win.rolled_back, win_key
    taken = event.cash_amount + event.bonus_amount + event.bonus_forfeited
    return replace(
        state,
        cash=state.cash - event.cash_amount,
        bonus=state.bonus - event.bonus_amount,
        wins=state.wins.set(win_key, replace(win, rolled_back=True)),
        loss_window=_window_add(state.loss_window, event, taken),
    )


@_rule(e.RollbackTombstoned)
def _(event: e.RollbackTombstoned, state: WalletState) -> WalletState:
    key = (event.provider, event.target_key)
    return replace(state, tombstones=state.tombstones.set(key, event.key))


@_rule(e.RollbackRepeated, e.CommandRefused)
def _(event: e.RollbackRepeated | e.CommandRefused, state: WalletState) -> WalletState:
    return state


@_rule(e.WithdrawalRequested)
def _(event: e.WithdrawalRequested, state: WalletState) -> WalletState:
    record = WithdrawalRecord(amount=event.amount, rail=event.rail, rail_id=event.rail_id)
    return replace(
        state,
        cash=state.cash - event.amount,
        held=state.held + event.amount,
        withdrawals=state.withdrawals.set(event.key, record),
    )


@_rule(e.WithdrawalCompleted)
def _(event: e.WithdrawalCompleted, state: WalletState) -> WalletState:
    record = state.withdrawals[event.withdrawal_key]
    withdrawals = state.withdrawals.set(
        event.withdrawal_key, replace(record, status=WITHDRAWAL_COMPLETED)
    )
    return replace(state, held=state.held - event.amount, withdrawals=withdrawals)


@_rule(e.WithdrawalReleased)
def _(event: e.WithdrawalReleased, state: WalletState) -> WalletState:
    record = state.withdrawals[event.withdrawal_key]
    withdrawals = state.withdrawals.set(event.withdrawal_key, replace(record, status=event.reason))
    return replace(
        state,
        cash=state.cash + event.amount,
        held=state.held - event.amount,
        withdrawals=withdrawals,
    )


@_rule(e.BonusGranted)
def _(event: e.BonusGranted, state: WalletState) -> WalletState:
    assert state.bonus_record is None
    record = BonusRecord(
        bonus_id=event.key,
        wagering_required=event.wagering_required,
        max_conversion=event.max_conversion,
        max_bet=event.max_bet,
        expires_at=event.expires_at,
    )
    return replace(state, bonus=state.bonus + event.amount, bonus_record=record)


@_rule(e.BonusForfeited)
def _(event: e.BonusForfeited, state: WalletState) -> WalletState:
    return replace(state, bonus=state.bonus - event.amount, bonus_record=None)


@_rule(e.BonusDeficitCharged)
def _(event: e.BonusDeficitCharged, state: WalletState) -> WalletState:
    return replace(state, cash=state.cash - event.amount, bonus=state.bonus + event.amount)


@_rule(e.BonusConverted)
def _(event: e.BonusConverted, state: WalletState) -> WalletState:
    return replace(
        state, bonus=state.bonus - event.amount, cash=state.cash + event.amount, bonus_record=None
    )


@_rule(e.LimitsChanged)
def _(event: e.LimitsChanged, state: WalletState) -> WalletState:
    return replace(
        state,
        limits=event.active,
        pending_limits=event.pending,
        pending_limits_at=event.pending_effective_at,
    )


def _with_round(state: WalletState, round_key, round_: RoundRecord) -> dict:
    """The rounds map with round_ stored, and the index of open bonus-funded rounds."""
    index = state.open_bonus_rounds
    if round_.bears_on_bonus:
        index = index.set(round_key, True)
    elif round_key in index:
        index = index.delete(round_key)
    return {"rounds": state.rounds.set(round_key, round_), "open_bonus_rounds": index}


def _wagered(record: BonusRecord | None, bonus_id: str | None, contribution: int):
    """Moves wagering progress of the active bonus, if the bet counted towards it."""
    if record is None or bonus_id != record.bonus_id or contribution == 0:
        return record
    return replace(record, wagering_progress=record.wagering_progress + contribution)


def _window_add(window: TimeWindow, event: e.WalletEvent, amount: int) -> TimeWindow:
    """Adds (recorded_at, amount), dropping entries older than the longest window."""
    now_us = to_micros(event.recorded_at)
    return window_add(window, now_us, amount, now_us - limits.window_30d_s * 1_000_000)
