"""`decide`: a command and the wallet's current state in, an outcome and new events out.

Pure: the application shell prefetches the wallet, passes the time and the new journal's id
in the context, and appends the returned events together with the idempotency record.
A rejection of a command on an existing wallet returns one `CommandRefused` event, which
moves nothing but puts the outcome in the wallet's hash chain; the shell records the
rejection too, so a resend gets it again.
"""

import msgspec

from ledger.core import commands as c
from ledger.core import events as e
from ledger.core.decide_bonus import (
    decide_forfeit,
    decide_grant,
    expire_bonus_if_due,
    settle_bonus_if_due,
)
from ledger.core.decide_cashier import (
    decide_complete_withdrawal,
    decide_deposit,
    decide_release_withdrawal,
    decide_request_withdrawal,
    decide_reverse_deposit,
)
from ledger.core.decide_game import decide_bet, decide_rollback, decide_win
from ledger.core.decide_limits import decide_set_limits
from ledger.core.draft import Context, Draft
from ledger.core.outcomes import Outcome
from ledger.core.state import WalletState
from ledger.core.suspense import decide_attribute


class Decision(msgspec.Struct, frozen=True):
    """The outcome, the events to append and the state after them;
    `item_events` belong to the suspense item an attribution resolves."""

    outcome: Outcome
    events: tuple[e.WalletEvent, ...]
    state: WalletState | None
    item_events: tuple[e.WalletEvent, ...] = ()


_DECIDERS = {
    c.Deposit: decide_deposit,
    c.ReverseDeposit: decide_reverse_deposit,
    c.Bet: decide_bet,
    c.Win: decide_win,
    c.Rollback: decide_rollback,
    c.RequestWithdrawal: decide_request_withdrawal,
    c.CompleteWithdrawal: decide_complete_withdrawal,
    c.CancelWithdrawal: decide_release_withdrawal,
    c.FailWithdrawal: decide_release_withdrawal,
    c.GrantBonus: decide_grant,
    c.ForfeitBonus: decide_forfeit,
    c.SetLimits: decide_set_limits,
    c.AttributeSuspense: decide_attribute,
}
assert set(_DECIDERS) == set(c.COMMAND_TYPES) - set(c.ITEM_COMMANDS)


def decide(state: WalletState | None, command: c.Command, context: Context) -> Decision:
    """Decides command against state; the command has already passed validation.

    A rejection returns its `CommandRefused` event, after any time-driven events that came
    due before the command (a bonus expiry): they happened whatever the command's fate, and
    the rejection's balances must already reflect them. A wallet that does not exist gets
    no events at all: a rejection never opens one.
    """
    assert state is None or state.wallet_id.int == context.wallet_id.int
    assert not isinstance(command, c.ITEM_COMMANDS), "suspense items have their own decide"
    foreign_target = _names_another_wallets_key(command, context)
    if state is None and (foreign_target or not isinstance(command, c.WALLET_OPENING)):
        return Decision(Outcome.CONFLICT if foreign_target else Outcome.WRONG_CURRENCY, (), None)
    draft = Draft(state, command, context)
    if state is None:
        draft.emit(e.WalletOpened, (), player_id=command.player_id)
    expire_bonus_if_due(draft)
    due, state_after_due = len(draft.events), draft.state
    outcome = Outcome.CONFLICT if foreign_target else _DECIDERS[type(command)](draft, command)
    if outcome is not Outcome.OK:
        assert len(draft.events) == due, "a rejection emits nothing but its refusal"
        assert draft.state is state_after_due
        if state is None:
            return Decision(outcome, (), None)  # never open a wallet for a rejection
        draft.emit(
            e.CommandRefused, (), command_type=e.event_tag(type(command)), outcome=outcome.value
        )
        return Decision(outcome, tuple(draft.events), draft.state)
    settle_bonus_if_due(draft)
    assert draft.events, "every success emits at least one event"
    return Decision(outcome, tuple(draft.events), draft.state, tuple(draft.item_events))


def _names_another_wallets_key(command: c.Command, context: Context) -> bool:
    """A rollback whose target key belongs to another wallet's command (another player's
    bet or win): CONFLICT, an idempotency outcome, decided before anything else. Left to
    the rollback rules, it would tombstone the key in the wrong wallet and refund nobody."""
    if not isinstance(command, c.Rollback) or context.target_wallet_id is None:
        return False
    return context.target_wallet_id != context.wallet_id
