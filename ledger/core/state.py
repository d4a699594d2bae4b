"""The state of one (player, currency) wallet, folded from its event stream.

Frozen structs throughout; the growing collections (bets, wins, rounds, tombstones,
withdrawals) are persistent maps, so `evolve` is pure and each step costs O(log n) rather
than a copy of the whole history.
"""

from datetime import UTC, datetime
from uuid import UUID

import msgspec
from immutables import Map

from ledger.core.events import LimitSet
from ledger.core.window import TimeWindow

BET_OPEN = "open"
BET_SETTLED = "settled"  # a win references it
BET_ROLLED_BACK = "rolled_back"

WITHDRAWAL_PENDING = "pending"
WITHDRAWAL_COMPLETED = "completed"


class BetRecord(msgspec.Struct, frozen=True, kw_only=True):
    round_id: str
    cash_stake: int
    bonus_stake: int
    wagering_contribution: int
    bonus_id: str | None
    status: str = BET_OPEN


class WinRecord(msgspec.Struct, frozen=True, kw_only=True):
    bet_key: str
    cash_amount: int
    bonus_amount: int  # credited to the player's bonus
    bonus_id: str | None
    bonus_forfeited: int = 0  # the bonus share that went to the house bonus account
    rolled_back: bool = False


class RoundRecord(msgspec.Struct, frozen=True, kw_only=True):
    closed: bool = False
    bonus_stake_live: int = 0  # bonus money of bets in this round not rolled back
    wagering_live: int = 0  # wagering those bets counted towards the active bonus

    @property
    def bears_on_bonus(self) -> bool:
        """Open with bonus money or bonus wagering in play: the bonus cannot settle yet."""
        return not self.closed and (self.bonus_stake_live > 0 or self.wagering_live > 0)


class WithdrawalRecord(msgspec.Struct, frozen=True, kw_only=True):
    amount: int
    rail: str
    rail_id: str
    status: str = WITHDRAWAL_PENDING


class BonusRecord(msgspec.Struct, frozen=True, kw_only=True):
    bonus_id: str
    wagering_required: int
    wagering_progress: int = 0
    max_conversion: int | None = None
    max_bet: int | None = None
    expires_at: datetime | None = None


class Balances(msgspec.Struct, frozen=True):
    cash: int
    bonus: int
    held: int


class WalletState(msgspec.Struct, frozen=True, kw_only=True):
    wallet_id: UUID
    player_id: str
    currency: str
    version: int
    head_hash: str
    cash: int = 0
    bonus: int = 0
    held: int = 0
    bets: Map = Map()
    wins: Map = Map()
    rounds: Map = Map()
    open_bonus_rounds: Map = Map()  # keys of rounds that bear on the bonus
    tombstones: Map = Map()
    withdrawals: Map = Map()
    deposits: Map = Map()  # deposit key -> amount not yet reversed (deposits and attributions)
    bonus_record: BonusRecord | None = None
    limits: LimitSet = LimitSet()
    pending_limits: LimitSet | None = None
    pending_limits_at: datetime | None = None
    deposit_window: TimeWindow = TimeWindow()
    loss_window: TimeWindow = TimeWindow()

    @property
    def balances(self) -> Balances:
        return Balances(self.cash, self.bonus, self.held)

    @property
    def is_negative(self) -> bool:
        """A reversal drove cash or bonus below zero: bets and withdrawals are blocked."""
        return self.cash < 0 or self.bonus < 0


ZERO_BALANCES = Balances(0, 0, 0)

ITEM_HELD = "held"
ITEM_ATTRIBUTED = "attributed"
ITEM_RETURNED = "returned"


class SuspenseItem(msgspec.Struct, frozen=True, kw_only=True):
    """Money in `suspense:{ccy}` awaiting resolution, folded from the item's own stream."""

    item_id: UUID
    key: str
    currency: str
    amount: int
    rail: str
    rail_id: str
    version: int
    head_hash: str
    status: str = ITEM_HELD


def effective_limits(state: WalletState, now: datetime) -> LimitSet:
    """The limits in force at `now`: pending increases apply once their delay has passed."""
    pending_at = state.pending_limits_at
    if state.pending_limits is not None and pending_at is not None and now >= pending_at:
        return state.pending_limits
    return state.limits


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exact (no float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
