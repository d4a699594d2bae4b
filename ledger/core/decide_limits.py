"""Responsible gambling: self-exclusion, deposit and loss limits, and SetLimits.

Deposit limits are gross (withdrawals free no headroom) over rolling 24 h, 7 d and 30 d
windows; every configured window is checked, so the lowest effectively applies. Loss is
stakes minus wins inside the window. A tighter limit applies at once; a looser one (or a
removal) only after `limits.limit_increase_delay_s`. Self-exclusion can be extended at once
and never shortened.
"""

from datetime import datetime, timedelta

from ledger.core import commands as c
from ledger.core import events as e
from ledger.core import limits
from ledger.core.draft import Draft
from ledger.core.outcomes import Outcome
from ledger.core.state import WalletState, effective_limits, to_micros
from ledger.core.validation import LIMIT_FIELDS
from ledger.core.window import TimeWindow, window_sum

_WINDOWS = (("24h", limits.window_24h_s), ("7d", limits.window_7d_s), ("30d", limits.window_30d_s))


def is_self_excluded(state: WalletState, now: datetime) -> bool:
    until = effective_limits(state, now).self_excluded_until
    return until is not None and now < until


def deposit_exceeds_limit(state: WalletState, now: datetime, amount: int) -> bool:
    return _exceeds(state, now, amount, "deposit_limit", state.deposit_window)


def loss_exceeds_limit(state: WalletState, now: datetime, stake: int) -> bool:
    return _exceeds(state, now, stake, "loss_limit", state.loss_window)


def _exceeds(
    state: WalletState, now: datetime, amount: int, prefix: str, window: TimeWindow
) -> bool:
    active = effective_limits(state, now)
    now_us = to_micros(now)
    for suffix, window_s in _WINDOWS:
        limit = getattr(active, f"{prefix}_{suffix}")
        if limit is not None and max(window_sum(window, now_us, window_s), 0) + amount > limit:
            return True
    return False


def decide_set_limits(draft: Draft, command: c.SetLimits) -> Outcome:
    now = draft.context.now
    current = effective_limits(draft.wallet, now)
    if _shortens_exclusion(current.self_excluded_until, command.self_excluded_until, now):
        return Outcome.INVALID_STATE
    immediate: dict = {"self_excluded_until": command.self_excluded_until}
    pending: dict = {"self_excluded_until": command.self_excluded_until}
    for field in LIMIT_FIELDS:
        old, new = getattr(current, field), getattr(command, field)
        immediate[field] = new if _is_tighter(old, new) else old
        pending[field] = new
    active = e.LimitSet(**immediate)
    wanted = e.LimitSet(**pending)
    is_delayed = wanted != active
    draft.emit(
        e.LimitsChanged,
        (),
        active=active,
        pending=wanted if is_delayed else None,
        pending_effective_at=now + timedelta(seconds=limits.limit_increase_delay_s)
        if is_delayed
        else None,
    )
    return Outcome.OK


def _is_tighter(old: int | None, new: int | None) -> bool:
    return new is not None and (old is None or new < old)


def _shortens_exclusion(old: datetime | None, new: datetime | None, now: datetime) -> bool:
    if old is None or old <= now:
        return False
    return new is None or new < old
