"""Commands (docs/contract.md, "Commands and their postings"): frozen, keyword-only msgspec
structs with stable tags.

Amounts are integer minor units of the command's currency (the wire layer parses decimal
strings before building a command). `occurred_at` is the provider's own timestamp, kept for
the record but not part of the request fingerprint: a retry may restamp it.
"""

from datetime import datetime

import msgspec


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    idempotency_key: str
    player_id: str
    currency: str
    occurred_at: datetime | None = None


class GameCommand(Command, frozen=True, kw_only=True):
    """A seamless-wallet call: its idempotency key is scoped by the provider."""

    provider: str


class Deposit(Command, frozen=True, kw_only=True, tag="Deposit"):
    amount: int
    rail: str  # "psp" or "chain"
    rail_id: str  # gateway or network name


class ReverseDeposit(Command, frozen=True, kw_only=True, tag="ReverseDeposit"):
    """A chargeback or chain reorg: always applied, even into a negative balance."""

    amount: int
    rail: str
    rail_id: str
    deposit_key: str | None = None


class Bet(GameCommand, frozen=True, kw_only=True, tag="Bet"):
    amount: int
    round_id: str
    game_category: str = "slots"


class Win(GameCommand, frozen=True, kw_only=True, tag="Win"):
    amount: int
    bet_key: str
    round_closed: bool = False


class Rollback(GameCommand, frozen=True, kw_only=True, tag="Rollback"):
    target_key: str


class RequestWithdrawal(Command, frozen=True, kw_only=True, tag="RequestWithdrawal"):
    amount: int
    rail: str
    rail_id: str


class CompleteWithdrawal(Command, frozen=True, kw_only=True, tag="CompleteWithdrawal"):
    withdrawal_key: str


class CancelWithdrawal(Command, frozen=True, kw_only=True, tag="CancelWithdrawal"):
    withdrawal_key: str


class FailWithdrawal(Command, frozen=True, kw_only=True, tag="FailWithdrawal"):
    withdrawal_key: str


class GrantBonus(Command, frozen=True, kw_only=True, tag="GrantBonus"):
    amount: int
    wagering_multiplier: int
    max_conversion: int | None = None
    max_bet: int | None = None
    expires_at: datetime | None = None


class ForfeitBonus(Command, frozen=True, kw_only=True, tag="ForfeitBonus"):
    pass


class SetLimits(Command, frozen=True, kw_only=True, tag="SetLimits"):
    """The complete desired limit set: None means no limit (removing one is an increase)."""

    deposit_limit_24h: int | None = None
    deposit_limit_7d: int | None = None
    deposit_limit_30d: int | None = None
    loss_limit_24h: int | None = None
    loss_limit_7d: int | None = None
    loss_limit_30d: int | None = None
    self_excluded_until: datetime | None = None


class HoldInSuspense(Command, frozen=True, kw_only=True, tag="HoldInSuspense"):
    """Money that reached a rail but belongs to no known player (an unknown deposit address,
    a missing memo, a deposit below the minimum): rail -> `suspense:{ccy}`, never "nobody".

    The idempotency key names the suspense item; the command touches no player wallet.
    """

    player_id: str = ""
    amount: int
    rail: str
    rail_id: str
    reason: str


class AttributeSuspense(Command, frozen=True, kw_only=True, tag="AttributeSuspense"):
    """Resolves a suspense item to its player: suspense -> player cash, a late deposit."""

    item_key: str


class ReturnSuspense(Command, frozen=True, kw_only=True, tag="ReturnSuspense"):
    """Resolves a suspense item back to its rail (refund to sender, chain reorg)."""

    player_id: str = ""
    item_key: str


COMMAND_TYPES: tuple[type[Command], ...] = (
    Deposit,
    ReverseDeposit,
    Bet,
    Win,
    Rollback,
    RequestWithdrawal,
    CompleteWithdrawal,
    CancelWithdrawal,
    FailWithdrawal,
    GrantBonus,
    ForfeitBonus,
    SetLimits,
    HoldInSuspense,
    AttributeSuspense,
    ReturnSuspense,
)

# Commands allowed to open a wallet implicitly (docs/contract.md); an attribution is a deposit.
WALLET_OPENING = (Deposit, GrantBonus, SetLimits, AttributeSuspense)

# Commands whose stream is a suspense item rather than a player's wallet.
ITEM_COMMANDS = (HoldInSuspense, ReturnSuspense)


def idempotency_scope(command: Command) -> str:
    """Provider calls are scoped by provider; every other key is global to the ledger."""
    if isinstance(command, GameCommand):
        return f"provider:{command.provider}"
    return "client"
