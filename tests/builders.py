"""Terse builders for commands in tests, and for the idempotency record a command leaves:
amounts are EUR minor units (6 decimals)."""

from datetime import UTC, datetime
from uuid import UUID

from ledger.core import commands as c
from ledger.core.events import CommandRecorded

EUR = 1_000_000  # one euro in minor units
PLAYER = "p1"
PROVIDER = "hub88"


def deposit(key: str, amount: int, *, player: str = PLAYER, currency: str = "EUR") -> c.Deposit:
    return c.Deposit(
        idempotency_key=key,
        player_id=player,
        currency=currency,
        amount=amount,
        rail="psp",
        rail_id="stripe",
    )


def reverse(key: str, amount: int, *, player: str = PLAYER, deposit: str | None = None):
    return c.ReverseDeposit(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        rail="psp",
        rail_id="stripe",
        deposit_key=deposit,
    )


def bet(
    key: str,
    amount: int,
    *,
    round_id: str = "r1",
    player: str = PLAYER,
    category: str = "slots",
    currency: str = "EUR",
) -> c.Bet:
    return c.Bet(
        idempotency_key=key,
        provider=PROVIDER,
        player_id=player,
        currency=currency,
        amount=amount,
        round_id=round_id,
        game_category=category,
    )


def win(key: str, bet_key: str, amount: int, *, closed: bool = True, player: str = PLAYER) -> c.Win:
    return c.Win(
        idempotency_key=key,
        provider=PROVIDER,
        player_id=player,
        currency="EUR",
        amount=amount,
        bet_key=bet_key,
        round_closed=closed,
    )


def rollback(key: str, target: str, *, player: str = PLAYER) -> c.Rollback:
    return c.Rollback(
        idempotency_key=key,
        provider=PROVIDER,
        player_id=player,
        currency="EUR",
        target_key=target,
    )


def withdraw(key: str, amount: int, *, player: str = PLAYER) -> c.RequestWithdrawal:
    return c.RequestWithdrawal(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        rail="psp",
        rail_id="stripe",
    )


def complete(key: str, withdrawal: str, *, player: str = PLAYER) -> c.CompleteWithdrawal:
    return c.CompleteWithdrawal(
        idempotency_key=key, player_id=player, currency="EUR", withdrawal_key=withdrawal
    )


def cancel(key: str, withdrawal: str, *, player: str = PLAYER) -> c.CancelWithdrawal:
    return c.CancelWithdrawal(
        idempotency_key=key, player_id=player, currency="EUR", withdrawal_key=withdrawal
    )


def fail(key: str, withdrawal: str, *, player: str = PLAYER) -> c.FailWithdrawal:
    return c.FailWithdrawal(
        idempotency_key=key, player_id=player, currency="EUR", withdrawal_key=withdrawal
    )


def grant(
    key: str,
    amount: int,
    *,
    multiplier: int = 1,
    max_conversion: int | None = None,
    max_bet: int | None = None,
    expires_at=None,
    player: str = PLAYER,
) -> c.GrantBonus:
    return c.GrantBonus(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount=amount,
        wagering_multiplier=multiplier,
        max_conversion=max_conversion,
        max_bet=max_bet,
        expires_at=expires_at,
    )


def forfeit(key: str, *, player: str = PLAYER) -> c.ForfeitBonus:
    return c.ForfeitBonus(idempotency_key=key, player_id=player, currency="EUR")


def set_limits(key: str, *, player: str = PLAYER, **limits) -> c.SetLimits:
    return c.SetLimits(idempotency_key=key, player_id=player, currency="EUR", **limits)


def hold(key: str, amount: int, *, currency: str = "EUR", reason: str = "unknown_address"):
    return c.HoldInSuspense(
        idempotency_key=key,
        currency=currency,
        amount=amount,
        rail="chain",
        rail_id="ethereum",
        reason=reason,
    )


def attribute(key: str, item: str, *, player: str = PLAYER) -> c.AttributeSuspense:
    return c.AttributeSuspense(idempotency_key=key, player_id=player, currency="EUR", item_key=item)


def give_back(key: str, item: str) -> c.ReturnSuspense:
    return c.ReturnSuspense(idempotency_key=key, currency="EUR", item_key=item)


def command_recorded(
    record_id: UUID, wallet: UUID, key: str = "k-1", *, scope: str = "provider:hub88"
) -> CommandRecorded:
    """A refused Bet's idempotency record that wrote nothing to `wallet`, as a store holds it."""
    return CommandRecorded(
        originator_id=record_id,
        originator_version=1,
        recorded_at=datetime(2026, 12, 6, tzinfo=UTC),
        scope=scope,
        key=key,
        command_type="Bet",
        fingerprint="f",
        outcome="OK",
        journal_id=None,
        wallet_id=wallet,
        wallet_version_first=1,
        wallet_version_last=0,
        cash=0,
        bonus=0,
        held=0,
    )
