"""CoinsPaid / CryptoProcessing callbacks on the wire, and the deposit state machine.

Rules this module keeps (casino-protocols.md §2.1, §2.2):

- The signature is `X-Processing-Signature`: the lowercase hex HMAC-SHA512 of the raw POST
  body with the shared secret. It is checked on the bytes exactly as received, with a
  constant-time comparison, before the body is parsed at all.
- A deposit is identified by the payment, not by the callback: its key is
  `{processor}:{txid}`, so two callbacks with different ids that report the same on-chain
  payment credit it once.
- CoinsPaid reuses one callback `id` for every status update of the same transaction
  (`not_confirmed`, then `confirmed`), so a callback is deduplicated on (`id`, `status`),
  never on `id` alone: that would drop the `confirmed` that follows a `not_confirmed`. The
  id is scoped by the callback's `type` (`record_id`), so a deposit's id never makes a
  withdrawal's callback look handled.
- Engine keys are joined with ":" (`{processor}:{txid}`, `...:reversal`, `...:suspense`),
  so a txid may not contain one: it could otherwise name another deposit's reversal.
- Chargebacks: a deposit callback with status `cancelled` or `chargeback` for a deposit that
  is already credited reverses it. CoinsPaid itself sends `cancelled` (a double spend found
  after confirmation); `chargeback` is accepted for card-style gateways speaking this dialect.
- Amounts are read by the engine's own parser (`parse_amount`) with the currency's scale, so
  the adapter accepts exactly what the engine would: an exponent (`1e3`), a sign, blanks,
  `NaN` or a digit beyond the scale is refused, never rounded or normalised into a credit.
- A callback is validated strictly: each documented field has its type, and a field not
  documented for that type is refused, so nothing the processor says is silently ignored.

The state machine is one pure table, `DEPOSIT_STEPS`, from (local status, callback status)
to (new local status, engine action). A missing row means "nothing changes".
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

from adapters import limits, strict_json
from ledger.client import Currency, InvalidArgument, format_amount, parse_amount

SIGNATURE_HEADER = "X-Processing-Signature"

# Local deposit statuses. `refused` means the engine refused the credit (a deposit limit or a
# self-exclusion): the money is at the processor, so it is held in `suspense:{ccy}` (item
# `{key}:suspense`) for the back office to attribute or return; a later cancellation or
# chargeback of such a deposit returns the held item to the processor.
PENDING, CREDITED, FAILED, REVERSED, REFUSED = (
    "pending",
    "credited",
    "failed",
    "reversed",
    "refused",
)

# Engine actions a step can ask for.
CREDIT, REVERSE, RETURN = "credit", "reverse", "return"

# (local status or None for an unknown deposit, callback status) -> (new status, action).
# `confirmed` before `not_confirmed` credits at once; a late `not_confirmed` has no row here
# for any known deposit, so it changes nothing. `cancelled` before confirmation fails the
# deposit without touching the engine.
DEPOSIT_STEPS: dict[tuple[str | None, str], tuple[str, str | None]] = {
    (None, "not_confirmed"): (PENDING, None),
    (None, "confirmed"): (CREDITED, CREDIT),
    (PENDING, "confirmed"): (CREDITED, CREDIT),
    (None, "cancelled"): (FAILED, None),
    (PENDING, "cancelled"): (FAILED, None),
    (None, "chargeback"): (FAILED, None),
    (PENDING, "chargeback"): (FAILED, None),
    (CREDITED, "cancelled"): (REVERSED, REVERSE),
    (CREDITED, "chargeback"): (REVERSED, REVERSE),
    (REFUSED, "cancelled"): (REVERSED, RETURN),
    (REFUSED, "chargeback"): (REVERSED, RETURN),
}


class CallbackError(ValueError):
    """A callback body that is not valid JSON or lacks a field; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass(frozen=True)
class DepositCallback:
    callback_id: str
    status: str
    player_id: str
    currency: str
    amount: str  # canonical: the engine's own formatting of the exact minor units
    txid: str

    @property
    def record_id(self) -> str:
        """The callback's id in the adapter's dedupe table, scoped by its type."""
        return f"deposit:{self.callback_id}"


@dataclass(frozen=True)
class WithdrawalCallback:
    callback_id: str
    status: str
    withdrawal_key: str
    player_id: str
    currency: str

    @property
    def record_id(self) -> str:
        """The callback's id in the adapter's dedupe table, scoped by its type."""
        return f"withdrawal:{self.callback_id}"


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA512 of body with secret, as the processor puts it in the header."""
    return hmac.new(secret, body, hashlib.sha512).hexdigest()


def signature_is_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when header is the hex HMAC-SHA512 of the raw body; compared in constant time."""
    if not header:
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


class _Strict(BaseModel):
    """A callback object: every field CoinsPaid documents for it is declared, any other is
    refused, and no value is coerced (an amount sent as a JSON number is refused)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _identity(value: object) -> str:
    """An id as text. CoinsPaid sends its own ids as JSON numbers; they are identities, so
    text is as good, but an empty one (or a boolean) could not be deduplicated."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= limits.callback_id_length_max:
        return value
    raise ValueError(f"must be an integer or 1 to {limits.callback_id_length_max} characters")


_Identity = Annotated[str, PlainValidator(_identity)]
_PlayerId = Field(min_length=1, max_length=limits.player_id_length_max)
# A txid becomes part of engine keys joined with ":", so it may not contain one: a txid
# "T:reversal" would otherwise credit a deposit under the reversal key of deposit "T".
_Txid = Field(default=None, min_length=1, max_length=limits.txid_length_max, pattern=r"^[^:\s]+$")


class _Address(_Strict):
    id: _Identity | None = None
    currency: str | None = None
    address: str | None = None
    tag: str | None = None
    foreign_id: str | None = None
    convert_to: str | None = None


class _DepositAddress(_Address):
    foreign_id: str = _PlayerId  # the player, as given when the address was created


class _Sum(_Strict):
    currency: str = Field(min_length=1, max_length=limits.currency_code_length_max)
    amount: str
    amount_minus_fee: str | None = None


class _ChainTransaction(_Strict):
    id: _Identity | None = None
    currency: str | None = None
    transaction_type: str | None = None
    type: str | None = None
    address: str | None = None
    tag: str | None = None
    amount: str | None = None
    txid: str | None = _Txid
    riskscore: str | float | None = None
    confirmations: int | str | None = None


class _Fee(_Strict):
    type: str | None = None
    currency: str | None = None
    amount: str | None = None


class _Callback(_Strict):
    id: _Identity
    end_user_reference: str | None = None
    crypto_address: _Address | None = None
    currency_sent: _Sum
    currency_received: _Sum
    transactions: list[_ChainTransaction] = []
    fees: list[_Fee] = []
    error: str | None = None


_WITHDRAWAL_KEY_LENGTH_MAX = limits.engine_key_length_max - len(":complete")


class _DepositBody(_Callback):
    type: Literal["deposit"]
    crypto_address: _DepositAddress
    status: Literal["not_confirmed", "confirmed", "cancelled", "chargeback"]


class _WithdrawalBody(_Callback):
    type: Literal["withdrawal"]
    # The cashier's RequestWithdrawal key; the adapter adds `:complete` or `:fail` to it.
    foreign_id: str = Field(min_length=1, max_length=_WITHDRAWAL_KEY_LENGTH_MAX)
    end_user_reference: str = _PlayerId
    status: Literal["pending", "not_confirmed", "confirmed", "cancelled", "declined"]


_BODIES: dict[str, type[_Callback]] = {"deposit": _DepositBody, "withdrawal": _WithdrawalBody}


def _validated(document: dict, model: type[_Callback]) -> _Callback:
    """The document as model, or CallbackError naming the first field at fault."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        reason = _REASONS.get(first["type"], first["msg"].removeprefix("Value error, "))
        raise CallbackError(field, reason) from None


_REASONS = {"missing": "is missing", "extra_forbidden": "is not a field of this callback"}


def _exact_amount(text: str, field: str, currencies: Mapping[str, Currency], code: str) -> str:
    """text as the engine reads it, or CallbackError: `parse_amount` with the currency's scale
    (no exponent, sign, blank, NaN or digit beyond the scale), formatted back canonically."""
    currency = currencies.get(code)
    if currency is None:
        raise CallbackError(f"{field.rpartition('.')[0]}.currency", f"unknown currency {code!r}")
    try:
        minor = parse_amount(text, currency, field=field)
    except InvalidArgument as error:
        raise CallbackError(error.field, error.reason) from None
    return format_amount(minor, currency)


def _deposit(body: _DepositBody, currencies: Mapping[str, Currency]) -> DepositCallback:
    received = body.currency_received
    # The deposit is keyed by its one chain transaction; a second one would go unread.
    if len(body.transactions) > 1:
        raise CallbackError("transactions", f"lists {len(body.transactions)}, a deposit pays one")
    txid = body.transactions[0].txid if body.transactions else None
    if txid is None:
        raise CallbackError("transactions.0.txid", "is missing")
    amount = _exact_amount(
        received.amount, "currency_received.amount", currencies, received.currency
    )
    return DepositCallback(
        callback_id=body.id,
        status=body.status,
        player_id=body.crypto_address.foreign_id,
        currency=received.currency,
        amount=amount,
        txid=txid,
    )


def _withdrawal(body: _WithdrawalBody) -> WithdrawalCallback:
    return WithdrawalCallback(
        callback_id=body.id,
        status=body.status,
        withdrawal_key=body.foreign_id,
        player_id=body.end_user_reference,
        currency=body.currency_sent.currency,
    )


def parse_callback(
    body: bytes, currencies: Mapping[str, Currency]
) -> DepositCallback | WithdrawalCallback:
    """The callback in a (signature-checked) body; raises CallbackError naming the first bad
    field, for any type but deposit and withdrawal, and for any field not documented."""
    try:
        document = strict_json.loads(body)
    except strict_json.RepeatedKey as error:
        raise CallbackError("body", str(error)) from None
    except (ValueError, UnicodeDecodeError):
        raise CallbackError("body", "is not valid JSON") from None
    except RecursionError:
        raise CallbackError("body", "is nested too deeply") from None
    if not isinstance(document, dict):
        raise CallbackError("body", "must be a JSON object")
    kind = document.get("type")
    if not isinstance(kind, str) or kind not in _BODIES:
        raise CallbackError("type", f"unsupported value {str(kind)[:32]!r}")
    validated = _validated(document, _BODIES[kind])
    if isinstance(validated, _DepositBody):
        return _deposit(validated, currencies)
    return _withdrawal(validated)


def callback_identity(body: bytes) -> dict[str, str]:
    """The `type`, `id` and `status` of a body that failed parsing, as far as they can be read."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    fields = ("type", "id", "status")
    return {name: str(document[name])[:64] for name in fields if name in document}


def deposit_key(processor: str, txid: str) -> str:
    """The engine idempotency key of the deposit that txid paid."""
    return f"{processor}:{txid}"


def suspense_key(key: str) -> str:
    """The suspense item holding a deposit the engine refused to credit."""
    return f"{key}:suspense"


def reversal_key(key: str) -> str:
    return f"{key}:reversal"
