"""Bonus money: grant, forfeit, expiry and automatic conversion.

One bonus may be active per wallet. Wagering progress counts each stake placed while the
bonus is active, weighted by its game category (rounded down). When progress reaches the
requirement and no round funded by bonus money is still open, the bonus balance converts to
cash up to the bonus's max conversion and the rest is forfeited. A bonus whose balance is
spent with no bonus-funded round open ends as exhausted.
"""

from ledger.core import accounts as a
from ledger.core import commands as c
from ledger.core import events as e
from ledger.core.decide_limits import is_self_excluded
from ledger.core.draft import Draft, posting
from ledger.core.outcomes import Outcome
from ledger.core.state import WalletState


def decide_grant(draft: Draft, command: c.GrantBonus) -> Outcome:
    state = draft.wallet
    if is_self_excluded(state, draft.context.now):
        return Outcome.PLAYER_BLOCKED
    if state.bonus_record is not None:
        return Outcome.INVALID_STATE
    draft.emit(
        e.BonusGranted,
        (
            posting(a.house_bonus(command.currency), -command.amount),
            posting(a.player_bonus(command.player_id, command.currency), command.amount),
        ),
        amount=command.amount,
        wagering_required=command.amount * command.wagering_multiplier,
        max_conversion=command.max_conversion,
        max_bet=command.max_bet,
        expires_at=command.expires_at,
    )
    return Outcome.OK


def decide_forfeit(draft: Draft, command: c.ForfeitBonus) -> Outcome:
    if draft.wallet.bonus_record is None:
        return Outcome.INVALID_STATE
    forfeit_active_bonus(draft, "forfeited")
    return Outcome.OK


def forfeit_active_bonus(draft: Draft, reason: str) -> None:
    """Returns what is left of the active bonus to the house; a deficit is charged to cash."""
    _charge_deficit(draft)
    state = draft.wallet
    assert state.bonus_record is not None
    amount = state.bonus
    assert amount >= 0
    draft.emit(
        e.BonusForfeited,
        _bonus_to_house(state, amount),
        bonus_id=state.bonus_record.bonus_id,
        amount=amount,
        reason=reason,
    )


def expire_bonus_if_due(draft: Draft) -> None:
    """Expiry is applied lazily, by the first command decided at or after `expires_at`."""
    record = draft.state.bonus_record if draft.state is not None else None
    has_expiry = record is not None and record.expires_at is not None
    if has_expiry and draft.context.now >= record.expires_at:
        forfeit_active_bonus(draft, "expired")


def settle_bonus_if_due(draft: Draft) -> None:
    """Converts a bonus whose wagering is met, or ends one that is spent."""
    state = draft.state
    if state is None or state.bonus_record is None or has_open_bonus_round(state):
        return
    record = state.bonus_record
    if record.wagering_progress >= record.wagering_required:
        _convert(draft)
    elif state.bonus <= 0:
        forfeit_active_bonus(draft, "exhausted")


def has_open_bonus_round(state: WalletState) -> bool:
    """Some open round holds bonus money or wagering that counted towards the bonus."""
    return len(state.open_bonus_rounds) > 0


def _convert(draft: Draft) -> None:
    _charge_deficit(draft)
    state = draft.wallet
    record = state.bonus_record
    assert record is not None
    available = state.bonus
    assert available >= 0
    cap = record.max_conversion
    converted = available if cap is None else min(available, cap)
    player, currency = state.player_id, state.currency
    draft.emit(
        e.BonusConverted,
        (
            posting(a.player_bonus(player, currency), -converted),
            posting(a.player_cash(player, currency), converted),
        ),
        bonus_id=record.bonus_id,
        amount=converted,
    )
    if available > converted:
        draft.emit(
            e.BonusForfeited,
            _bonus_to_house(draft.wallet, available - converted),
            bonus_id=record.bonus_id,
            amount=available - converted,
            reason="conversion_cap",
        )


def _charge_deficit(draft: Draft) -> None:
    """A bonus may only end at zero or above: a negative bonus balance is moved to cash."""
    state = draft.wallet
    assert state.bonus_record is not None
    if state.bonus < 0:
        player, currency = state.player_id, state.currency
        draft.emit(
            e.BonusDeficitCharged,
            (
                posting(a.player_cash(player, currency), state.bonus),
                posting(a.player_bonus(player, currency), -state.bonus),
            ),
            bonus_id=state.bonus_record.bonus_id,
            amount=-state.bonus,
        )


def _bonus_to_house(state: WalletState, amount: int) -> tuple[e.Posting, ...]:
    return (
        posting(a.player_bonus(state.player_id, state.currency), -amount),
        posting(a.house_bonus(state.currency), amount),
    )
