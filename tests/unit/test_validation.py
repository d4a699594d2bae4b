"""Boundary validation: wrong types and malformed identifiers are refused naming the field,
before anything could be stored."""

from datetime import datetime

import msgspec
import pytest

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
