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
  never on `id` alone: that would drop the `confirmed` that follows a `not_confirmed`.
- Chargebacks: a deposit callback with status `cancelled` or `chargeback` for a deposit that
  is already credited reverses it. CoinsPaid itself sends `cancelled` (a double spend found
  after confirmation); `chargeback` is accepted for card-style gateways speaking this dialect.
- Amounts stay decimal strings: parsed with `Decimal` only to validate and trim them, never
  through a float, and passed to the engine as exact major-unit strings.

The state machine is one pure table, `DEPOSIT_STEPS`, from (local status, callback status)
to (new local status, engine action). A missing row means "nothing changes".
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SIGNATURE_HEADER = "X-Processing-Signature"

# Local deposit statuses. `refused` means the engine refused the credit (a deposit limit or a
# self-exclusion): the money is at the processor, so it is held in `suspense:{ccy}` (item
# `{key}:suspense`) for the back office to attribute or return; a later cancellation or
# chargeback of such a deposit returns the held item to the processor.
PENDING, CREDITED, FAILED, REVERSED, REFUSED = (
    "pending", "credited", "failed", "reversed", "refused",
)  # fmt: skip

# Engine actions a step can ask for.
CREDIT, REVERSE, RETURN = "credit", "reverse", "return"

DEPOSIT_STATUSES = ("not_confirmed", "confirmed", "cancelled", "chargeback")
WITHDRAWAL_STATUSES = ("pending", "not_confirmed", "confirmed", "cancelled", "declined")

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
    amount: str
    txid: str


@dataclass(frozen=True)
class WithdrawalCallback:
    callback_id: str
    status: str
    withdrawal_key: str
    player_id: str
    currency: str


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA512 of body with secret, as the processor puts it in the header."""
    return hmac.new(secret, body, hashlib.sha512).hexdigest()


def signature_is_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when header is the hex HMAC-SHA512 of the raw body; compared in constant time."""
    if not header:
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def _field(document: dict, path: str) -> object:
    """The value at a dotted path such as `crypto_address.foreign_id` or `transactions.0.txid`."""
    value: object = document
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise CallbackError(path, "is missing")
    return value


def _text(document: dict, path: str) -> str:
    value = _field(document, path)
    # Ids are sometimes integers in CoinsPaid payloads; they are identities, so text is safe.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise CallbackError(path, "must be a non-empty string")
    return value.strip()


def _amount(document: dict, path: str) -> str:
    """A positive decimal string, trimmed ("0.01000000" -> "0.01"); floats are refused."""
    value = _field(document, path)
    if not isinstance(value, str):
        raise CallbackError(path, "must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CallbackError(path, "is not a decimal number") from None
    if not number.is_finite() or number <= 0:
        raise CallbackError(path, "must be a positive decimal number")
    text = format(number.normalize(), "f")
    return text


def _status(document: dict, allowed: tuple[str, ...]) -> str:
    status = _text(document, "status").lower()
    if status not in allowed:
        raise CallbackError("status", f"unknown value {status[:32]!r}")
    return status


def parse_deposit(document: dict) -> DepositCallback:
    """A `deposit` callback's fields; raises CallbackError naming the first bad one."""
    return DepositCallback(
        callback_id=_text(document, "id"),
        status=_status(document, DEPOSIT_STATUSES),
        player_id=_text(document, "crypto_address.foreign_id"),
        currency=_text(document, "currency_received.currency").upper(),
        amount=_amount(document, "currency_received.amount"),
        txid=_text(document, "transactions.0.txid"),
    )


def parse_withdrawal(document: dict) -> WithdrawalCallback:
    """A `withdrawal` callback's fields; raises CallbackError naming the first bad one."""
    return WithdrawalCallback(
        callback_id=_text(document, "id"),
        status=_status(document, WITHDRAWAL_STATUSES),
        withdrawal_key=_text(document, "foreign_id"),
        player_id=_text(document, "end_user_reference"),
        currency=_text(document, "currency_sent.currency").upper(),
    )


def parse_callback(body: bytes) -> DepositCallback | WithdrawalCallback:
    """The callback in a (signature-checked) body; other types raise CallbackError."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackError("body", "is not valid JSON") from None
    if not isinstance(document, dict):
        raise CallbackError("body", "must be a JSON object")
    kind = _text(document, "type")
    if kind == "deposit":
        return parse_deposit(document)
    if kind == "withdrawal":
        return parse_withdrawal(document)
    raise CallbackError("type", f"unsupported value {kind[:32]!r}")


def deposit_key(processor: str, txid: str) -> str:
    """The engine idempotency key of the deposit that txid paid."""
    return f"{processor}:{txid}"


def suspense_key(key: str) -> str:
    """The suspense item holding a deposit the engine refused to credit."""
    return f"{key}:suspense"


def reversal_key(key: str) -> str:
    return f"{key}:reversal"
