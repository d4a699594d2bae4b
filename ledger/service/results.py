"""What the application returns for a command: the outcome and the wallet's balances."""

from uuid import UUID

import msgspec

from ledger.core.outcomes import Outcome
from ledger.core.state import Balances


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """`balances` are current; for a replay, `balances_after` are those the original left."""

    outcome: Outcome
    original_outcome: Outcome
    journal_id: UUID | None
    balances: Balances
    balances_after: Balances
    wallet_version: int
