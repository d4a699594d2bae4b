"""Boundary validation of commands: every refusal names the field and the reason.

Runs before `decide`; inside the core, types and ranges are trusted and only asserted.
Identifiers that become part of account names must not contain the ':' separator.
"""

import re
import typing
from datetime import datetime

import msgspec

from ledger.core import commands as c
from ledger.core import limits
from ledger.core.accounts import RAILS
from ledger.core.errors import InvalidArgument
from ledger.core.money import Currency, check_amount
from ledger.core.policy import Rules

_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces or control characters


def validate(command: c.Command, rules: Rules) -> None:
    """Raises InvalidArgument naming the first malformed field of command."""
    _check_types(command)
    _check_key(command.idempotency_key, "idempotency_key")
    if isinstance(command, c.ITEM_COMMANDS):
        if command.player_id:
            raise InvalidArgument("player_id", "must be empty: a suspense item has no player")
    else:
        _check_account_id(command.player_id, "player_id", limits.player_id_length_max)
    currency = rules.currencies.get(command.currency)
    _check_timestamp(command.occurred_at, "occurred_at")
    if isinstance(command, c.GameCommand):
        _check_account_id(command.provider, "provider", limits.provider_id_length_max)
    _VALIDATORS[type(command)](command, currency, rules)


def validate_wallet_reference(player_id: str, currency: str, rules: Rules) -> None:
    """Refuses a malformed (player, currency) pair of a query, naming the field."""
    _check_account_id(player_id, "player_id", limits.player_id_length_max)
    rules.currencies.get(currency)


def validate_transaction_reference(idempotency_key: str, provider: str) -> None:
    """Refuses a malformed key or provider of a GetTransaction query, naming the field: no
    command could have been recorded under it."""
    _check_key(idempotency_key, "idempotency_key")
    if provider:
        _check_account_id(provider, "provider", limits.provider_id_length_max)


def validate_account_reference(account: str, rules: Rules) -> Currency:
    """The currency of a queried account name (`house:games:hub88:EUR`), refusing a name
    that no account could have, naming `account`."""
    segments = account.split(":") if len(account) <= limits.account_length_max else []
    if len(segments) < 3 or not all(_ACCOUNT_ID.fullmatch(part) for part in segments):
        raise InvalidArgument("account", "must name an account like house:games:hub88:EUR")
    return rules.currencies.get(segments[-1], field="account")


def _check_types(command: c.Command) -> None:
    """Struct construction does not type-check; a float or a string must never reach the
    store, where the typed decoder would later refuse it and make the wallet unreadable.

    A command whose every field holds exactly one of its annotation's plain types passes
    at once: the conversion below would accept it and leave each value's type as it is.
    Anything else (a wrong type, a subclass, a type without an entry) takes the
    conversion, which alone words the refusal."""
    field_types = _FIELD_TYPES.get(type(command))
    if field_types is not None:
        for value, types in zip(msgspec.structs.astuple(command), field_types, strict=True):
            if type(value) not in types:
                break
        else:
            return
    _check_types_by_conversion(command)


def _check_types_by_conversion(command: c.Command) -> None:
    """Converts the command's fields to its type, refusing what does not convert exactly."""
    fields = msgspec.structs.asdict(command)
    try:
        checked = msgspec.convert(fields, type(command))
    except msgspec.ValidationError as error:
        reason, _, path = str(error).rpartition(" - at `$.")
        raise InvalidArgument(path.rstrip("`") or "command", reason or str(error)) from None
    for field, value in fields.items():
        if type(getattr(checked, field)) is not type(value):
            raise InvalidArgument(field, f"has the wrong type {type(value).__name__}")


def _check_key(value: str, field: str, length_max: int = limits.idempotency_key_length_max):
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "is required")
    if len(value) > length_max:
        raise InvalidArgument(field, f"is longer than {length_max}")
    if not _KEY.fullmatch(value):
        raise InvalidArgument(field, "must be printable ASCII without spaces")


def _check_account_id(value: str, field: str, length_max: int) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "is required")
    if len(value) > length_max:
        raise InvalidArgument(field, f"is longer than {length_max}")
    if not _ACCOUNT_ID.fullmatch(value):
        raise InvalidArgument(field, "may hold only letters, digits, '_', '.' and '-'")


def _check_timestamp(value: datetime | None, field: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidArgument(field, "must carry a time zone")


def _check_rail(command) -> None:
    """The rail fields of a deposit, reversal, withdrawal request or suspense hold."""
    if command.rail not in RAILS:
        raise InvalidArgument("rail", f"must be one of {', '.join(RAILS)}")
    _check_account_id(command.rail_id, "rail_id", limits.rail_id_length_max)


def _validate_deposit(command, currency: Currency, rules: Rules) -> None:
    check_amount(command.amount, currency, field="amount")
    _check_rail(command)
    if isinstance(command, c.ReverseDeposit) and command.deposit_key is not None:
        _check_key(command.deposit_key, "deposit_key")


def _validate_bet(command: c.Bet, currency: Currency, rules: Rules) -> None:
    check_amount(command.amount, currency, field="amount")
    _check_key(command.round_id, "round_id", limits.round_id_length_max)
    if command.game_category not in rules.policy.game_category_weights:
        shown = command.game_category[: limits.game_category_length_max]
        raise InvalidArgument("game_category", f"unknown category {shown!r}")


def _validate_win(command: c.Win, currency: Currency, rules: Rules) -> None:
    check_amount(command.amount, currency, field="amount", zero_allowed=True)
    _check_key(command.bet_key, "bet_key")


def _validate_rollback(command: c.Rollback, currency: Currency, rules: Rules) -> None:
    _check_key(command.target_key, "target_key")
    if command.target_key == command.idempotency_key:
        raise InvalidArgument("target_key", "must differ from idempotency_key")


def _validate_withdrawal_step(command, currency: Currency, rules: Rules) -> None:
    _check_key(command.withdrawal_key, "withdrawal_key")


def _validate_grant(command: c.GrantBonus, currency: Currency, rules: Rules) -> None:
    check_amount(command.amount, currency, field="amount")
    cap = rules.policy.bonus_multiplier_max
    if not 0 <= command.wagering_multiplier <= cap:
        raise InvalidArgument("wagering_multiplier", f"must be between 0 and {cap}")
    for field in ("max_conversion", "max_bet"):
        value = getattr(command, field)
        if value is not None:
            check_amount(value, currency, field=field)
    _check_timestamp(command.expires_at, "expires_at")


def _validate_limits(command: c.SetLimits, currency: Currency, rules: Rules) -> None:
    for field in LIMIT_FIELDS:
        value = getattr(command, field)
        if value is not None:
            check_amount(value, currency, field=field, zero_allowed=True)
    _check_timestamp(command.self_excluded_until, "self_excluded_until")


def _validate_hold(command: c.HoldInSuspense, currency: Currency, rules: Rules) -> None:
    check_amount(command.amount, currency, field="amount")
    _check_rail(command)
    _check_account_id(command.reason, "reason", limits.suspense_reason_length_max)


def _validate_item_reference(command, currency: Currency, rules: Rules) -> None:
    _check_key(command.item_key, "item_key")


def _no_fields(command, currency: Currency, rules: Rules) -> None:
    """Commands with nothing beyond the common fields."""


LIMIT_FIELDS = (
    "deposit_limit_24h",
    "deposit_limit_7d",
    "deposit_limit_30d",
    "loss_limit_24h",
    "loss_limit_7d",
    "loss_limit_30d",
)

_VALIDATORS = {
    c.Deposit: _validate_deposit,
    c.ReverseDeposit: _validate_deposit,
    c.Bet: _validate_bet,
    c.Win: _validate_win,
    c.Rollback: _validate_rollback,
    c.RequestWithdrawal: lambda command, currency, rules: (
        check_amount(command.amount, currency, field="amount"),
        _check_rail(command),
    ),
    c.CompleteWithdrawal: _validate_withdrawal_step,
    c.CancelWithdrawal: _validate_withdrawal_step,
    c.FailWithdrawal: _validate_withdrawal_step,
    c.GrantBonus: _validate_grant,
    c.ForfeitBonus: _no_fields,
    c.SetLimits: _validate_limits,
    c.HoldInSuspense: _validate_hold,
    c.AttributeSuspense: _validate_item_reference,
    c.ReturnSuspense: _validate_item_reference,
}
assert set(_VALIDATORS) == set(c.COMMAND_TYPES)

# The types msgspec.convert leaves exactly as they are, for the annotations commands use.
_PLAIN_TYPES = frozenset({str, int, bool, datetime, type(None)})


def _field_types(command_type: type[c.Command]) -> tuple[frozenset[type], ...]:
    """Per field, in the struct's order, the value types that pass `_check_types` at once."""
    field_types = []
    for field in msgspec.structs.fields(command_type):
        types = frozenset(typing.get_args(field.type) or (field.type,))
        # A field of another annotation (a constraint, a literal, a nested struct) would need
        # the conversion's checks: it must be added here knowingly, never passed unchecked.
        assert types <= _PLAIN_TYPES, (command_type.__name__, field.name, field.type)
        field_types.append(types)
    return tuple(field_types)


_FIELD_TYPES = {command_type: _field_types(command_type) for command_type in c.COMMAND_TYPES}
