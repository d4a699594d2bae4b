"""Seamless-wallet game calls: Bet, Win, Rollback.

Check order for a Bet (first failure wins): tombstone (acknowledge, apply nothing), blocks,
negative balance, round state, limits, funds. Wins and rollbacks settle earlier bets, so
they skip blocks, limits and funds. Stakes spend cash first, then bonus; a win is split
pro rata to its bet's cash and bonus stake, the bonus share rounded down. Money owed to a
bonus that is no longer active goes back to the house bonus account.
"""

from ledger.core import accounts as a
from ledger.core import commands as c
from ledger.core import events as e
from ledger.core.decide_limits import is_self_excluded, loss_exceeds_limit
from ledger.core.draft import Draft, posting
from ledger.core.outcomes import Outcome
from ledger.core.state import (
    BET_OPEN,
    BET_ROLLED_BACK,
    BET_SETTLED,
    BetRecord,
    WalletState,
    WinRecord,
)


def decide_bet(draft: Draft, command: c.Bet) -> Outcome:
    state, now = draft.wallet, draft.context.now
    if (command.provider, command.idempotency_key) in state.tombstones:
        draft.emit(e.BetVoided, (), provider=command.provider, round_id=command.round_id)
        return Outcome.OK
    if is_self_excluded(state, now):
        return Outcome.PLAYER_BLOCKED
    if state.is_negative:
        return Outcome.NEGATIVE_BALANCE
    round_ = state.rounds.get((command.provider, command.round_id))
    if round_ is not None and round_.closed:
        return Outcome.ROUND_CLOSED
    record = state.bonus_record
    if record is not None and record.max_bet is not None and command.amount > record.max_bet:
        return Outcome.LIMIT_EXCEEDED
    if loss_exceeds_limit(state, now, command.amount):
        return Outcome.LIMIT_EXCEEDED
    if max(state.cash, 0) + max(state.bonus, 0) < command.amount:
        return Outcome.INSUFFICIENT_FUNDS
    _place(draft, command)
    return Outcome.OK


def _place(draft: Draft, command: c.Bet) -> None:
    state = draft.wallet
    cash_stake = min(max(state.cash, 0), command.amount)
    bonus_stake = command.amount - cash_stake
    record = state.bonus_record
    weight = draft.context.rules.policy.game_category_weights[command.game_category]
    contribution = command.amount * weight // 100 if record is not None else 0
    draft.emit(
        e.BetPlaced,
        (
            posting(a.player_cash(state.player_id, state.currency), -cash_stake),
            posting(a.player_bonus(state.player_id, state.currency), -bonus_stake),
            posting(a.house_games(command.provider, state.currency), command.amount),
        ),
        provider=command.provider,
        round_id=command.round_id,
        cash_stake=cash_stake,
        bonus_stake=bonus_stake,
        game_category=command.game_category,
        wagering_contribution=contribution,
        bonus_id=record.bonus_id if record is not None else None,
    )


def decide_win(draft: Draft, command: c.Win) -> Outcome:
    state = draft.wallet
    if (command.provider, command.idempotency_key) in state.tombstones:
        draft.emit(e.WinVoided, (), provider=command.provider, bet_key=command.bet_key)
        return Outcome.OK
    bet_key = (command.provider, command.bet_key)
    bet = state.bets.get(bet_key)
    if bet is None:
        return Outcome.ALREADY_ROLLED_BACK if bet_key in state.tombstones else Outcome.BET_NOT_FOUND
    if bet.status == BET_ROLLED_BACK:
        return Outcome.ALREADY_ROLLED_BACK
    if state.rounds[(command.provider, bet.round_id)].closed:
        return Outcome.ALREADY_SETTLED
    _pay(draft, command, bet)
    return Outcome.OK


def _pay(draft: Draft, command: c.Win, bet: BetRecord) -> None:
    state = draft.wallet
    stake = bet.cash_stake + bet.bonus_stake
    bonus_share = command.amount * bet.bonus_stake // stake if stake > 0 else 0
    cash_share = command.amount - bonus_share
    credited, forfeited = _bonus_split(state, bet.bonus_id, bonus_share)
    draft.emit(
        e.WinPaid,
        (
            posting(a.house_games(command.provider, state.currency), -command.amount),
            posting(a.player_cash(state.player_id, state.currency), cash_share),
            posting(a.player_bonus(state.player_id, state.currency), credited),
            posting(a.house_bonus(state.currency), forfeited),
        ),
        provider=command.provider,
        bet_key=command.bet_key,
        round_id=bet.round_id,
        cash_amount=cash_share,
        bonus_amount=credited,
        round_closed=command.round_closed,
        bonus_forfeited=forfeited,
    )


def decide_rollback(draft: Draft, command: c.Rollback) -> Outcome:
    state = draft.wallet
    target = (command.provider, command.target_key)
    bet = state.bets.get(target)
    if bet is not None:
        return _roll_back_bet(draft, command, bet)
    win = state.wins.get(target)
    if win is not None:
        if win.rolled_back:
            return _repeated(draft, command)
        _roll_back_win(draft, command, win)
        return Outcome.OK
    if target in state.tombstones:
        return _repeated(draft, command)
    draft.emit(e.RollbackTombstoned, (), provider=command.provider, target_key=command.target_key)
    return Outcome.OK


def _roll_back_bet(draft: Draft, command: c.Rollback, bet: BetRecord) -> Outcome:
    state = draft.wallet
    if bet.status == BET_ROLLED_BACK:
        return _repeated(draft, command)
    if bet.status == BET_SETTLED or state.rounds[(command.provider, bet.round_id)].closed:
        return Outcome.ALREADY_SETTLED
    assert bet.status == BET_OPEN
    credited, forfeited = _bonus_split(state, bet.bonus_id, bet.bonus_stake)
    draft.emit(
        e.BetRolledBack,
        (
            posting(
                a.house_games(command.provider, state.currency), -(bet.cash_stake + bet.bonus_stake)
            ),
            posting(a.player_cash(state.player_id, state.currency), bet.cash_stake),
            posting(a.player_bonus(state.player_id, state.currency), credited),
            posting(a.house_bonus(state.currency), forfeited),
        ),
        provider=command.provider,
        target_key=command.target_key,
        cash_amount=bet.cash_stake,
        bonus_amount=credited,
        wagering_contribution=bet.wagering_contribution,
        bonus_forfeited=forfeited,
        bonus_id=bet.bonus_id,
    )
    return Outcome.OK


def _roll_back_win(draft: Draft, command: c.Rollback, win: WinRecord) -> None:
    """Takes a paid win back leg by leg; cash or bonus may go negative (a reversal).

    The bonus leg comes back from the player's bonus while that bonus lives, otherwise from
    the house bonus account; the share that went to the house bonus comes back from there.
    """
    state = draft.wallet
    debited, from_house = _bonus_split(state, win.bonus_id, win.bonus_amount)
    total = win.cash_amount + win.bonus_amount + win.bonus_forfeited
    draft.emit(
        e.WinRolledBack,
        (
            posting(a.house_games(command.provider, state.currency), total),
            posting(a.player_cash(state.player_id, state.currency), -win.cash_amount),
            posting(a.player_bonus(state.player_id, state.currency), -debited),
            posting(a.house_bonus(state.currency), -(from_house + win.bonus_forfeited)),
        ),
        provider=command.provider,
        target_key=command.target_key,
        cash_amount=win.cash_amount,
        bonus_amount=debited,
        bonus_forfeited=from_house + win.bonus_forfeited,
    )


def _repeated(draft: Draft, command: c.Rollback) -> Outcome:
    draft.emit(e.RollbackRepeated, (), provider=command.provider, target_key=command.target_key)
    return Outcome.OK


def _bonus_split(state: WalletState, bonus_id: str | None, amount: int) -> tuple[int, int]:
    """(to the player's bonus, to the house bonus): the player's only while that bonus lives."""
    record = state.bonus_record
    if bonus_id is not None and record is not None and record.bonus_id == bonus_id:
        return amount, 0
    return 0, amount
