"""Stored events: frozen msgspec structs with stable tags. Schemas are append-only.

Rules (msgspec's schema-evolution rules applied to an event store): never rename a tag or a
field, never change a field's type, give every new field a default; a breaking change gets
a new `class_version` and an upcaster in `ledger.store.mapper`. Events hold ids only, never
personal data, so the history can be kept for years.

Wallet events carry their journal's postings and the hash of their predecessor in the
stream (`previous_hash`), which makes every wallet stream a hash chain.
"""

from datetime import datetime
from functools import cache
from uuid import UUID

import msgspec

from ledger.core.checkpoint import AnyCheckpoint


class Posting(msgspec.Struct, frozen=True, array_like=True):
    """One leg of a journal entry: the change of an account's balance."""

    account: str
    amount: int


class StoredEventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type"):
    originator_id: UUID
    originator_version: int
    recorded_at: datetime


class WalletEvent(StoredEventBase, frozen=True, kw_only=True):
    """An event of one (player, currency) wallet stream; `key` is the command's key."""

    previous_hash: str
    journal_id: UUID
    key: str
    currency: str
    postings: tuple[Posting, ...] = ()
    occurred_at: datetime | None = None


class WalletOpened(WalletEvent, frozen=True, kw_only=True, tag="WalletOpened"):
    player_id: str


class Deposited(WalletEvent, frozen=True, kw_only=True, tag="Deposited"):
    amount: int
    rail: str
    rail_id: str


class DepositReversed(WalletEvent, frozen=True, kw_only=True, tag="DepositReversed"):
    amount: int
    rail: str
    rail_id: str
    deposit_key: str | None = None


class BetPlaced(WalletEvent, frozen=True, kw_only=True, tag="BetPlaced"):
    provider: str
    round_id: str
    cash_stake: int
    bonus_stake: int
    game_category: str
    wagering_contribution: int
    bonus_id: str | None = None


class BetVoided(WalletEvent, frozen=True, kw_only=True, tag="BetVoided"):
    """A bet whose rollback arrived first: acknowledged, never applied."""

    provider: str
    round_id: str


class WinPaid(WalletEvent, frozen=True, kw_only=True, tag="WinPaid"):
    provider: str
    bet_key: str
    round_id: str
    cash_amount: int
    bonus_amount: int
    round_closed: bool
    bonus_forfeited: int = 0  # bonus share of a bonus no longer active: back to house bonus


class WinVoided(WalletEvent, frozen=True, kw_only=True, tag="WinVoided"):
    """A win whose rollback arrived first: acknowledged, never applied."""

    provider: str
    bet_key: str


class BetRolledBack(WalletEvent, frozen=True, kw_only=True, tag="BetRolledBack"):
    """`bonus_id` is the bet's bonus, whose wagering the contribution comes off: None for a
    bet without one, and in rollbacks stored before it was recorded."""

    provider: str
    target_key: str
    cash_amount: int
    bonus_amount: int
    wagering_contribution: int
    bonus_forfeited: int = 0
    bonus_id: str | None = None


class WinRolledBack(WalletEvent, frozen=True, kw_only=True, tag="WinRolledBack"):
    provider: str
    target_key: str
    cash_amount: int
    bonus_amount: int
    bonus_forfeited: int = 0


class RollbackRepeated(WalletEvent, frozen=True, kw_only=True, tag="RollbackRepeated"):
    """A further rollback of an already rolled-back or tombstoned target: moves nothing."""

    provider: str
    target_key: str


class RollbackTombstoned(WalletEvent, frozen=True, kw_only=True, tag="RollbackTombstoned"):
    """A rollback of an unknown target: a later bet or win with that key is a no-op."""

    provider: str
    target_key: str


class WithdrawalRequested(WalletEvent, frozen=True, kw_only=True, tag="WithdrawalRequested"):
    amount: int
    rail: str
    rail_id: str


class WithdrawalCompleted(WalletEvent, frozen=True, kw_only=True, tag="WithdrawalCompleted"):
    withdrawal_key: str
    amount: int


class WithdrawalReleased(WalletEvent, frozen=True, kw_only=True, tag="WithdrawalReleased"):
    """A cancelled or failed withdrawal: the hold returns to cash."""

    withdrawal_key: str
    amount: int
    reason: str  # "cancelled" or "failed"


class BonusGranted(WalletEvent, frozen=True, kw_only=True, tag="BonusGranted"):
    amount: int
    wagering_required: int
    max_conversion: int | None
    max_bet: int | None
    expires_at: datetime | None


class BonusForfeited(WalletEvent, frozen=True, kw_only=True, tag="BonusForfeited"):
    bonus_id: str
    amount: int
    reason: str  # "forfeited", "expired", "withdrawal", "conversion_cap", "exhausted"


class BonusDeficitCharged(WalletEvent, frozen=True, kw_only=True, tag="BonusDeficitCharged"):
    """A bonus ending below zero (a win rollback took back spent bonus money): the deficit
    is charged to cash, so the bonus balance returns to zero and cannot block for ever."""

    bonus_id: str
    amount: int


class BonusConverted(WalletEvent, frozen=True, kw_only=True, tag="BonusConverted"):
    bonus_id: str
    amount: int


class LimitSet(msgspec.Struct, frozen=True, kw_only=True):
    """Responsible-gambling limits of a wallet; None means no limit."""

    deposit_limit_24h: int | None = None
    deposit_limit_7d: int | None = None
    deposit_limit_30d: int | None = None
    loss_limit_24h: int | None = None
    loss_limit_7d: int | None = None
    loss_limit_30d: int | None = None
    self_excluded_until: datetime | None = None


class LimitsChanged(WalletEvent, frozen=True, kw_only=True, tag="LimitsChanged"):
    """`active` applies now; `pending` (the increases) applies from `pending_effective_at`."""

    active: LimitSet
    pending: LimitSet | None
    pending_effective_at: datetime | None


class SuspenseAttributed(WalletEvent, frozen=True, kw_only=True, tag="SuspenseAttributed"):
    """A suspense item credited to its player: suspense -> player cash, a late deposit."""

    item_key: str
    amount: int
    rail: str
    rail_id: str


class SuspenseReceived(WalletEvent, frozen=True, kw_only=True, tag="SuspenseReceived"):
    """The first event of a suspense item's own stream: rail -> suspense."""

    amount: int
    rail: str
    rail_id: str
    reason: str


class SuspenseResolved(WalletEvent, frozen=True, kw_only=True, tag="SuspenseResolved"):
    """The second and last event of a suspense item's stream: its one resolution.

    Returned: this event carries the postings (suspense -> rail). Attributed: it carries
    none; the player's SuspenseAttributed, written in the same transaction, does. Either
    way it takes version 2 of the item's stream, so the store's primary key lets an item be
    resolved once, whatever the idempotency keys of competing resolutions.
    """

    resolution: str  # "attributed" or "returned"
    amount: int
    player_id: str | None = None


class CommandRefused(WalletEvent, frozen=True, kw_only=True, tag="CommandRefused"):
    """A command the wallet refused: its outcome, in the wallet's hash chain.

    It moves nothing (no postings). Written in the same transaction as the command's
    idempotency record, it puts every refusal inside what the chain's digests cover, so the
    audit can hold a record's outcome and time against the chain and an edited or removed
    rejection record is caught; and the player's statement shows refused bets too.
    """

    command_type: str
    outcome: str


class CommandRecorded(StoredEventBase, frozen=True, kw_only=True, tag="CommandRecorded"):
    """The idempotency record: one single-event stream per (scope, key).

    Written in the same transaction as the command's wallet events, so an outcome is never
    recorded without its postings or the other way round. The primary key of the event
    table on (originator_id, version 1) makes a concurrent second writer of the key fail.
    The command wrote versions `wallet_version_first` to `wallet_version_last` of stream
    `wallet_id`, both included; none when first is last + 1 (a refusal for a wallet that
    does not exist, or on a suspense item), and then last is the stream's version.
    """

    scope: str
    key: str
    command_type: str
    fingerprint: str
    outcome: str
    journal_id: UUID | None
    wallet_id: UUID
    wallet_version_first: int
    wallet_version_last: int
    cash: int
    bonus: int
    held: int
    player_id: str = ""
    currency: str = ""


class CurrencyScale(msgspec.Struct, frozen=True, array_like=True):
    code: str
    scale: int


class CurrenciesRecorded(StoredEventBase, frozen=True, kw_only=True, tag="CurrenciesRecorded"):
    """The decimal places of every currency the store holds amounts in, sorted by code.

    Minor units mean nothing without their scale, so the first start records it and every
    later start must agree; a start that adds a currency appends the extended set."""

    currencies: tuple[CurrencyScale, ...]


class CheckpointRecorded(StoredEventBase, frozen=True, kw_only=True, tag="CheckpointRecorded"):
    """A signed checkpoint of the log (`ledger.core.checkpoint`), kept in the log itself:
    later checkpoints cover it, so removing one is caught by the next."""

    checkpoint: AnyCheckpoint
    signature: str


class TestClockStarted(StoredEventBase, frozen=True, kw_only=True, tag="TestClockStarted"):
    """The first event of a test store's log: its clock may be advanced (`ledger.service.clock`).

    Written only on an empty store (`ledger serve --test-clock`), so a store that already
    holds history at wall-clock times never becomes one. Its clock reads the wall clock
    plus an offset, zero from here until the first `ClockAdvanced`."""

    __test__ = False  # a class named Test* that pytest must not collect where it is imported


class ClockAdvanced(StoredEventBase, frozen=True, kw_only=True, tag="ClockAdvanced"):
    """A test store's clock moved forward: `recorded_at` is the ledger time it moved to.

    From here the ledger's time is the wall clock plus `recorded_at - wall_time`, never
    before `recorded_at`."""

    advanced_from: datetime  # the ledger's time just before the advance
    wall_time: datetime  # the wall clock's time at the advance


WALLET_EVENT_TYPES: tuple[type[WalletEvent], ...] = (
    WalletOpened,
    Deposited,
    DepositReversed,
    BetPlaced,
    BetVoided,
    WinPaid,
    WinVoided,
    BetRolledBack,
    WinRolledBack,
    RollbackRepeated,
    RollbackTombstoned,
    WithdrawalRequested,
    WithdrawalCompleted,
    WithdrawalReleased,
    BonusGranted,
    BonusForfeited,
    BonusDeficitCharged,
    BonusConverted,
    LimitsChanged,
    SuspenseAttributed,
    SuspenseReceived,
    SuspenseResolved,
    CommandRefused,
)

EVENT_TYPES: tuple[type[StoredEventBase], ...] = (
    *WALLET_EVENT_TYPES,
    CommandRecorded,
    CurrenciesRecorded,
    CheckpointRecorded,
    TestClockStarted,
    ClockAdvanced,
)

AnyEvent = (
    WalletOpened
    | Deposited
    | DepositReversed
    | BetPlaced
    | BetVoided
    | WinPaid
    | WinVoided
    | BetRolledBack
    | WinRolledBack
    | RollbackRepeated
    | RollbackTombstoned
    | WithdrawalRequested
    | WithdrawalCompleted
    | WithdrawalReleased
    | BonusGranted
    | BonusForfeited
    | BonusDeficitCharged
    | BonusConverted
    | LimitsChanged
    | SuspenseAttributed
    | SuspenseReceived
    | SuspenseResolved
    | CommandRefused
    | CommandRecorded
    | CurrenciesRecorded
    | CheckpointRecorded
    | TestClockStarted
    | ClockAdvanced
)


@cache
def event_tag(event_type: type[StoredEventBase]) -> str:
    """The stable stored name of an event class (its msgspec tag); cached, it is on the hot path."""
    return msgspec.inspect.type_info(event_type).tag
