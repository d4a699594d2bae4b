"""Boundary validation: wrong types and malformed identifiers are refused naming the field,
before anything could be stored."""

from datetime import datetime

import msgspec
import pytest

from ledger.core.errors import InvalidArgument
from ledger.core.money import CurrencyRegistry
from ledger.core.policy import Policy, Rules
from ledger.core.validation import validate
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
