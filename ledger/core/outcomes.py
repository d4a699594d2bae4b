"""Business outcomes, ordered by precedence: when several apply, the earliest wins.

The order mirrors the check order of docs/contract.md ("Outcomes and their precedence"), as
the `Outcome` enum of the .proto does: idempotency, validation (lookups), blocks, negative
balance, round state, limits, funds. Tests walk this enum row by row.
"""

import enum


class Outcome(enum.Enum):
    OK = "OK"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    WRONG_CURRENCY = "WRONG_CURRENCY"
    WITHDRAWAL_NOT_FOUND = "WITHDRAWAL_NOT_FOUND"
    BET_NOT_FOUND = "BET_NOT_FOUND"
    ALREADY_ROLLED_BACK = "ALREADY_ROLLED_BACK"
    ALREADY_SETTLED = "ALREADY_SETTLED"
    INVALID_STATE = "INVALID_STATE"
    PLAYER_BLOCKED = "PLAYER_BLOCKED"
    NEGATIVE_BALANCE = "NEGATIVE_BALANCE"
    ROUND_CLOSED = "ROUND_CLOSED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"

    @property
    def is_success(self) -> bool:
        """True for outcomes a client treats as done: applied now or applied before."""
        return self in (Outcome.OK, Outcome.DUPLICATE)
