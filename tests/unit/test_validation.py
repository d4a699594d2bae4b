"""Boundary validation: wrong types and malformed identifiers are refused naming the field,
before anything could be stored."""

import typing
from datetime import UTC, datetime

import msgspec
import pytest

from ledger.core import commands as c
from ledger.core import validation
from ledger.core.errors import InvalidArgument
from ledger.core.money import CurrencyRegistry
from ledger.core.policy import Policy, Rules
from ledger.core.validation import (
    validate,
    validate_account_reference,
    validate_transaction_reference,
)
from tests.builders import EUR, bet, deposit, grant, win

RULES = Rules(CurrencyRegistry(), Policy())


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (msgspec.structs.replace(grant("g", EUR), wagering_multiplier=2.5), "wagering_multiplier"),
        (msgspec.structs.replace(grant("g", EUR), wagering_multiplier=True), "wagering_multiplier"),
        (msgspec.structs.replace(grant("g", EUR), expires_at="2027-01-01"), "expires_at"),
        (msgspec.structs.replace(win("w", "b", EUR), round_closed="no"), "round_closed"),
        (msgspec.structs.replace(deposit("d", EUR), amount=1.5), "amount"),
        (msgspec.structs.replace(deposit("d", EUR), amount="10"), "amount"),
        (msgspec.structs.replace(deposit("d", EUR), player_id=7), "player_id"),
        (grant("g", EUR, expires_at=datetime(2027, 1, 1)), "expires_at"),  # naive time
        (bet("b", EUR, round_id="r" * 200), "round_id"),
        (deposit("d", EUR, player="bad:id"), "player_id"),
        (deposit("d", EUR, currency="XXX"), "currency"),
        (msgspec.structs.replace(deposit("d", EUR), rail="bank"), "rail"),
        (msgspec.structs.replace(bet("b", EUR), game_category="bingo"), "game_category"),
        (
            msgspec.structs.replace(deposit("d", EUR), idempotency_key="has space"),
            "idempotency_key",
        ),
    ],
)
def test_malformed_commands_are_refused_naming_the_field(command, field):
    """Each malformed command is refused with the offending field's name."""
    with pytest.raises(InvalidArgument) as caught:
        validate(command, RULES)
    assert caught.value.field == field


def test_well_formed_commands_pass():
    """The builders' commands are valid as they are."""
    for command in (deposit("d", EUR), bet("b", EUR), win("w", "b", 0), grant("g", EUR)):
        validate(command, RULES)


@pytest.mark.parametrize(
    ("key", "provider", "field"),
    [
        ("", "", "idempotency_key"),
        ("has space", "", "idempotency_key"),
        ("nul\x00", "", "idempotency_key"),
        ("k" * 129, "", "idempotency_key"),
        ("k-1", "bad:provider", "provider"),
        ("k-1", "p" * 65, "provider"),
    ],
)
def test_malformed_transaction_references_are_refused_naming_the_field(key, provider, field):
    """A GetTransaction key or provider no command could carry is refused naming the field."""
    with pytest.raises(InvalidArgument) as caught:
        validate_transaction_reference(key, provider)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "account",
    [
        "",
        "nonsense",
        "house:EUR",
        "house:ga mes:hub88:EUR",
        "a\x00:b:EUR",
        "h:g:ü:EUR",
        "house::EUR",
        "house:games:" + "x" * 256 + ":EUR",
        "house:games:hub88:XXX",
    ],
)
def test_malformed_account_names_are_refused_naming_the_account(account):
    """An account name no account could have (shape, characters, length, currency) is refused."""
    with pytest.raises(InvalidArgument) as caught:
        validate_account_reference(account, RULES)
    assert caught.value.field == "account"


def test_well_formed_references_pass():
    """Keys, providers and account names the engine composes pass, with the account's currency."""
    validate_transaction_reference("k-1", "hub88")
    validate_transaction_reference("k-1", "")
    assert validate_account_reference("player:p-1.x_y:cash:BTC", RULES).code == "BTC"


class _Text(str):
    """A str subclass: the conversion keeps it, the quick type check hands it on."""


class _Number(int):
    """An int subclass: the conversion turns it into an int, so it is refused."""


_SAMPLE_VALUES = (
    "text",
    _Text("text"),
    7,
    _Number(7),
    True,
    1.5,
    None,
    datetime(2027, 1, 1, tzinfo=UTC),
    b"bytes",
)
_SAMPLE_BY_TYPE = {str: "k-1", int: 5, bool: False, datetime: datetime(2027, 1, 1, tzinfo=UTC)}


def _well_typed(command_type):
    """A command of command_type whose every field holds a value of its annotation's type."""
    fields = {}
    for field in msgspec.structs.fields(command_type):
        types = [t for t in typing.get_args(field.type) or (field.type,) if t is not type(None)]
        fields[field.name] = _SAMPLE_BY_TYPE[types[0]]
    return command_type(**fields)


def _type_refusal(check, command):
    try:
        check(command)
    except InvalidArgument as error:
        return error.field, error.reason
    return None


@pytest.mark.parametrize("command_type", c.COMMAND_TYPES, ids=lambda t: t.__name__)
def test_the_quick_type_check_agrees_with_the_conversion_for_every_field(command_type):
    """Every field of every command, holding each sample value, is passed or refused (with
    the same field and reason) exactly as the conversion alone would."""
    command = _well_typed(command_type)
    assert _type_refusal(validation._check_types, command) is None
    for field in msgspec.structs.fields(command_type):
        for value in _SAMPLE_VALUES:
            changed = msgspec.structs.replace(command, **{field.name: value})
            expected = _type_refusal(validation._check_types_by_conversion, changed)
            assert _type_refusal(validation._check_types, changed) == expected, (field, value)
