"""Cashier commands: deposits, reversals (chargebacks, reorgs) and two-phase withdrawals.

A withdrawal request moves cash to held; completion pays the hold out to the rail; cancel
or failure returns it to cash. Requesting a withdrawal forfeits an active bonus. Deposits
are refused for a self-excluded player or over a deposit limit; withdrawals never are (an
excluded player must still be able to take their money out).
"""

from ledger.core import accounts as a
from ledger.core import commands as c
from ledger.core import events as e
from ledger.core.decide_bonus import forfeit_active_bonus
from ledger.core.decide_limits import deposit_exceeds_limit, is_self_excluded
from ledger.core.draft import Draft, posting
from ledger.core.outcomes import Outcome
from ledger.core.state import WITHDRAWAL_PENDING


def decide_deposit(draft: Draft, command: c.Deposit) -> Outcome:
    state, now = draft.wallet, draft.context.now
    if is_self_excluded(state, now):
        return Outcome.PLAYER_BLOCKED
    if deposit_exceeds_limit(state, now, command.amount):
        return Outcome.LIMIT_EXCEEDED
    draft.emit(
        e.Deposited,
        (
            posting(
                a.rail_account(command.rail, command.rail_id, command.currency), -command.amount
            ),
            posting(a.player_cash(command.player_id, command.currency), command.amount),
        ),
        amount=command.amount,
        rail=command.rail,
        rail_id=command.rail_id,
    )
    return Outcome.OK


def decide_reverse_deposit(draft: Draft, command: c.ReverseDeposit) -> Outcome:
    """Applied even into a negative balance. A reversal naming its deposit may take back at
    most what that deposit of this wallet has left unreversed, so a second chargeback of one
    deposit under another key is refused (INVALID_STATE) instead of debiting twice. Without
    a deposit key (a manual correction) nothing is checked."""
    if command.deposit_key is not None:
        remaining = draft.wallet.deposits.get(command.deposit_key)
        if remaining is None or command.amount > remaining:
            return Outcome.INVALID_STATE
    draft.emit(
        e.DepositReversed,
        (
            posting(a.player_cash(command.player_id, command.currency), -command.amount),
            posting(
                a.rail_account(command.rail, command.rail_id, command.currency), command.amount
            ),
        ),
        amount=command.amount,
        rail=command.rail,
        rail_id=command.rail_id,
        deposit_key=command.deposit_key,
    )
    return Outcome.OK


def decide_request_withdrawal(draft: Draft, command: c.RequestWithdrawal) -> Outcome:
    state = draft.wallet
    if state.is_negative:
        return Outcome.NEGATIVE_BALANCE
    if state.cash < command.amount:
        return Outcome.INSUFFICIENT_FUNDS
    if state.bonus_record is not None:
        forfeit_active_bonus(draft, "withdrawal")
    draft.emit(
        e.WithdrawalRequested,
        (
            posting(a.player_cash(command.player_id, command.currency), -command.amount),
            posting(a.player_held(command.player_id, command.currency), command.amount),
        ),
        amount=command.amount,
        rail=command.rail,
        rail_id=command.rail_id,
    )
    return Outcome.OK


def decide_complete_withdrawal(draft: Draft, command: c.CompleteWithdrawal) -> Outcome:
    record = draft.wallet.withdrawals.get(command.withdrawal_key)
    if record is None:
        return Outcome.WITHDRAWAL_NOT_FOUND
    if record.status != WITHDRAWAL_PENDING:
        return Outcome.INVALID_STATE
    draft.emit(
        e.WithdrawalCompleted,
        (
            posting(a.player_held(command.player_id, command.currency), -record.amount),
            posting(a.rail_account(record.rail, record.rail_id, command.currency), record.amount),
        ),
        withdrawal_key=command.withdrawal_key,
        amount=record.amount,
    )
    return Outcome.OK


def decide_release_withdrawal(draft: Draft, command: c.CancelWithdrawal | c.FailWithdrawal):
    record = draft.wallet.withdrawals.get(command.withdrawal_key)
    if record is None:
        return Outcome.WITHDRAWAL_NOT_FOUND
    if record.status != WITHDRAWAL_PENDING:
        return Outcome.INVALID_STATE
    draft.emit(
        e.WithdrawalReleased,
        (
            posting(a.player_held(command.player_id, command.currency), -record.amount),
            posting(a.player_cash(command.player_id, command.currency), record.amount),
        ),
        withdrawal_key=command.withdrawal_key,
        amount=record.amount,
        reason="cancelled" if isinstance(command, c.CancelWithdrawal) else "failed",
    )
    return Outcome.OK
