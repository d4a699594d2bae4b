"""The Hub88 operator Wallet API on the wire: messages, amounts, signatures, status codes.

Rules this module keeps (casino-protocols.md §1.2, §1.3, §1.14):

- Amounts are Int64 counts of 1/100 000 of the currency's major unit (3.56 → 356 000). They
  become the engine's decimal strings by integer arithmetic only; no float ever holds money.
- Engine balances go back the other way. The engine keeps EUR to 6 decimals, so a balance can
  hold a fraction of a Hub88 unit (a pro-rata bonus split, or a deposit from another rail).
  Such a balance is floored to whole units, never rounded up, so a provider can never be told
  about money the player does not have; the caller logs every floored balance as a warning.
- The signature is RSA-SHA256 (PKCS#1 v1.5), base64, in `X-Hub88-Signature`, over the raw
  body bytes exactly as received: re-serialised JSON would not verify.
- Engine outcomes map to Hub88 statuses in one table. OK and DUPLICATE are both RS_OK: Hub88
  wants a replay of something already processed to succeed.
- Engine idempotency keys carry the call's kind: `bet:{id}`, `win:{id}`, `rollback:{id}`.
  The signature covers the body but not the path, so a key made of the bare id would let one
  signed body be applied as another kind, and the genuine call then refused as a duplicate.
"""

import base64
import binascii
import re
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field

from adapters import limits

SIGNATURE_HEADER = "X-Hub88-Signature"
UNITS_PER_MAJOR = 100_000
INT64_MAX = 2**63 - 1

RS_OK = "RS_OK"
RS_ERROR_UNKNOWN = "RS_ERROR_UNKNOWN"
RS_ERROR_WRONG_CURRENCY = "RS_ERROR_WRONG_CURRENCY"
RS_ERROR_NOT_ENOUGH_MONEY = "RS_ERROR_NOT_ENOUGH_MONEY"
RS_ERROR_USER_DISABLED = "RS_ERROR_USER_DISABLED"
RS_ERROR_INVALID_SIGNATURE = "RS_ERROR_INVALID_SIGNATURE"
RS_ERROR_WRONG_SYNTAX = "RS_ERROR_WRONG_SYNTAX"
RS_ERROR_WRONG_TYPES = "RS_ERROR_WRONG_TYPES"
RS_ERROR_DUPLICATE_TRANSACTION = "RS_ERROR_DUPLICATE_TRANSACTION"
RS_ERROR_TRANSACTION_DOES_NOT_EXIST = "RS_ERROR_TRANSACTION_DOES_NOT_EXIST"
RS_ERROR_TRANSACTION_ROLLED_BACK = "RS_ERROR_TRANSACTION_ROLLED_BACK"
RS_ERROR_LIMIT_REACHED = "RS_ERROR_LIMIT_REACHED"
RS_ERROR_INVALID_TOKEN = "RS_ERROR_INVALID_TOKEN"
RS_ERROR_TOKEN_EXPIRED = "RS_ERROR_TOKEN_EXPIRED"
RS_ERROR_INVALID_GAME = "RS_ERROR_INVALID_GAME"

# Engine outcome -> Hub88 status. ALREADY_SETTLED (a win or rollback for a bet whose round is
# already settled) and ROUND_CLOSED (a bet into a closed round) both answer
# RS_ERROR_DUPLICATE_TRANSACTION: the request contradicts something already processed, nothing
# was moved, and Hub88-family providers treat that status as terminal, so they stop retrying
# a rollback and discard a bet without sending a rollback for it. Any outcome not listed here
# (INVALID_STATE, WITHDRAWAL_NOT_FOUND) cannot come from a game call and answers
# RS_ERROR_UNKNOWN.
STATUS_FOR_OUTCOME = {
    "OK": RS_OK,
    "DUPLICATE": RS_OK,
    "CONFLICT": RS_ERROR_DUPLICATE_TRANSACTION,
    "WRONG_CURRENCY": RS_ERROR_WRONG_CURRENCY,
    "BET_NOT_FOUND": RS_ERROR_TRANSACTION_DOES_NOT_EXIST,
    "ALREADY_ROLLED_BACK": RS_ERROR_TRANSACTION_ROLLED_BACK,
    "ALREADY_SETTLED": RS_ERROR_DUPLICATE_TRANSACTION,
    "PLAYER_BLOCKED": RS_ERROR_USER_DISABLED,
    "NEGATIVE_BALANCE": RS_ERROR_USER_DISABLED,
    "ROUND_CLOSED": RS_ERROR_DUPLICATE_TRANSACTION,
    "LIMIT_EXCEEDED": RS_ERROR_LIMIT_REACHED,
    "INSUFFICIENT_FUNDS": RS_ERROR_NOT_ENOUGH_MONEY,
}

BET, WIN, ROLLBACK = "bet", "win", "rollback"
# Hub88's ids are UUIDs; any id short enough that its longest engine key still fits is accepted.
TRANSACTION_UUID_LENGTH_MAX = limits.engine_key_length_max - len(f"{ROLLBACK}:")

_PLAIN_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")

HubAmount = Field(ge=0, le=INT64_MAX, description="Value × 100 000 (3.56 → 356000).")
# Hub88's id of one business action: `transaction_uuid`, and a reference to one.
TransactionId = Field(min_length=1, max_length=TRANSACTION_UUID_LENGTH_MAX)


class _Request(BaseModel):
    """Fields every wallet call carries.

    Each endpoint's model lists exactly the fields Hub88 sends to that endpoint and refuses any
    other (`extra="forbid"`). The signature covers the body but not the path, so a strict
    schema is what stops one endpoint's signed body from being accepted at another: a win has
    `reference_transaction_uuid`, which a bet must not have, and an `amount`, which a rollback
    must not have. Optional fields that move no money (`supplier_user`, `game_id`, `meta`,
    ...) are declared so that they are accepted, but never read.
    """

    # Strict: an amount sent as "356000" or 3.56 is a type error, not something to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    user: str = Field(min_length=1, max_length=128, description="The operator's player id.")
    request_uuid: str = Field(min_length=1, max_length=128, description="Echoed back.")
    token: str | None = Field(default=None, max_length=256, description="The game session.")
    supplier_user: str | None = Field(default=None, max_length=128)
    game_code: str | None = Field(default=None, max_length=128)
    game_id: int | None = Field(default=None, ge=0, le=INT64_MAX)


class BalanceRequest(_Request):
    """POST /user/balance. Hub88 sends no currency; the adapter's default applies then."""

    currency: str | None = Field(default=None, min_length=3, max_length=16)


class _TransactionRequest(_Request):
    transaction_uuid: str = TransactionId
    supplier_transaction_id: str | None = Field(default=None, max_length=128)
    round: str = Field(min_length=1, max_length=128)
    round_closed: bool = False
    currency: str = Field(min_length=3, max_length=16)
    is_free: bool = False
    is_supplier_promo: bool = False
    is_aggregated: bool = False
    reward_uuid: str | None = Field(default=None, max_length=128)
    bet: str | None = Field(default=None, max_length=256, description="Free text, e.g. a pick.")
    meta: dict[str, Any] | None = None


class BetRequest(_TransactionRequest):
    """POST /transaction/bet: debit amount from the player.

    Free rounds (`is_free`) and supplier promotions (`is_supplier_promo`) are not offered
    through this adapter. Their stake is not the player's money, so ignoring the flag and
    debiting the amount would charge the player for a free spin: a true flag is refused
    (RS_ERROR_WRONG_TYPES, final for the provider, which drops the bet). A win may carry the
    flags: it pays against its bet, and a free round's bet is never placed here.
    """

    is_free: Literal[False] = False
    is_supplier_promo: Literal[False] = False
    amount: int = HubAmount


class WinRequest(_TransactionRequest):
    """POST /transaction/win: credit amount for the bet named by reference_transaction_uuid."""

    reference_transaction_uuid: str = TransactionId
    amount: int = HubAmount
    jackpot_win: int | None = Field(default=None, ge=0, le=INT64_MAX, description="Of amount.")


class RollbackRequest(_TransactionRequest):
    """POST /transaction/rollback: undo reference_transaction_uuid; carries no amount."""

    reference_transaction_uuid: str = TransactionId


class WalletResponse(BaseModel):
    """Every answer, with HTTP 200: the outcome is in `status`, never in the HTTP code."""

    status: str = Field(description="RS_OK or an RS_ERROR_* code.")
    request_uuid: str | None = None
    user: str | None = None
    currency: str | None = None
    balance: int | None = Field(default=None, description="Value × 100 000, when known.")


def engine_key(kind: str, transaction_uuid: str) -> str:
    """The engine idempotency key of the Hub88 transaction of this kind with this id."""
    assert kind in (BET, WIN, ROLLBACK), kind
    key = f"{kind}:{transaction_uuid}"
    assert len(key) <= limits.engine_key_length_max, len(key)
    return key


def units_to_decimal(units: int) -> str:
    """A Hub88 Int64 amount as the engine's exact decimal string: 356000 → "3.56"."""
    assert units >= 0, units
    whole, fraction = divmod(units, UNITS_PER_MAJOR)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:05d}".rstrip("0")


def decimal_to_units(text: str) -> tuple[int, bool]:
    """An engine decimal string as Hub88 units, floored, and whether it was exact."""
    numerator, denominator = _scaled(text)
    return numerator // denominator, numerator % denominator == 0


def spendable_units(cash: str, bonus: str) -> tuple[int, bool]:
    """The balance a game may stake (positive cash plus positive bonus) in Hub88 units.

    The engine spends cash first, then bonus, and ignores a negative bucket, so this is the
    same sum it checks a bet against.
    """
    cash_n, cash_d = _scaled(cash)
    bonus_n, bonus_d = _scaled(bonus)
    numerator = max(cash_n, 0) * bonus_d + max(bonus_n, 0) * cash_d
    denominator = cash_d * bonus_d
    return numerator // denominator, numerator % denominator == 0


def _scaled(text: str) -> tuple[int, int]:
    """text × UNITS_PER_MAJOR as an exact fraction (numerator, positive denominator).

    The engine writes plain decimals (`-12.5`), read here with integers alone: `Fraction`
    cost more than the rest of a balance answer. Anything else goes through `Fraction`.
    """
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        exact = Fraction(text) * UNITS_PER_MAJOR
        return exact.numerator, exact.denominator
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    numerator = int(whole + fraction) * UNITS_PER_MAJOR
    return (-numerator if sign else numerator), 10 ** len(fraction)


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """The provider's RSA public key from PEM; refuses any other key type."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the Hub88 public key must be an RSA key")
    return key


def signature_is_valid(key: rsa.RSAPublicKey, body: bytes, header: str | None) -> bool:
    """True when header is a base64 RSA-SHA256 PKCS#1 v1.5 signature of body by key."""
    if not header:
        return False
    try:
        signature = base64.b64decode(header, validate=True)
        key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


class SessionRequest(BaseModel):
    """POST /operator/sessions: the operator platform opens a game session at launch."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user: str = Field(min_length=1, max_length=128, description="The operator's player id.")
    currency: str = Field(min_length=3, max_length=16)


class SessionResponse(BaseModel):
    token: str = Field(description="Put into the Hub88 game URL; Hub88 sends it back.")
    expires_at: datetime
