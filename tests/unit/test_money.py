"""Exact parsing of decimal strings to minor units; every refusal names the field."""

import pytest

from ledger.core.errors import InvalidArgument
from ledger.core.money import Currency, CurrencyRegistry, format_amount, parse_amount

REGISTRY = CurrencyRegistry()
EUR = REGISTRY.get("EUR")
ETH = REGISTRY.get("ETH")
BTC = REGISTRY.get("BTC")


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("10.50", EUR, 10_500_000),
        ("0.00001", EUR, 10),  # Hub88's 1/100000 unit
        ("0.00012345", BTC, 12_345),
        ("25", ETH, 25 * 10**18),
        ("1.000000000000000001", ETH, 10**18 + 1),
        ("007.5", EUR, 7_500_000),
    ],
)
def test_parses_exactly(text, currency, minor):
    """A plain decimal string becomes exact minor units of the currency's scale."""
    assert parse_amount(text, currency, field="amount") == minor


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is required"),
        ("1.0000001", "has 7 decimals, EUR allows 6"),
        ("-1", "is not a plain decimal number"),
        ("+1", "is not a plain decimal number"),
        ("1e3", "is not a plain decimal number"),
        ("NaN", "is not a plain decimal number"),
        (" 1", "is not a plain decimal number"),
        ("1.", "is not a plain decimal number"),
        (".5", "is not a plain decimal number"),
        ("0", "must be positive"),
        ("1000000000001", "exceeds the maximum"),
        ("1" * 80, "has more than"),
    ],
)
def test_refuses_with_field_and_reason(text, reason):
    """Anything that would need rounding or is not a plain positive amount is refused."""
    with pytest.raises(InvalidArgument) as caught:
        parse_amount(text, EUR, field="bet.amount")
    assert caught.value.field == "bet.amount"
    assert reason in str(caught.value)


def test_zero_is_allowed_where_the_caller_says_so():
    """A zero win (a lost round closing) is a valid amount when zero is allowed."""
    assert parse_amount("0.000", EUR, field="amount", zero_allowed=True) == 0


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (10_500_000, EUR, "10.5"),
        (10**18 + 1, ETH, "1.000000000000000001"),
        (-5, BTC, "-0.00000005"),
        (3 * 10**8, BTC, "3"),
    ],
)
def test_formats_with_trailing_zeros_trimmed(minor, currency, text):
    """Formatting is exact and round-trips through parsing for positive amounts."""
    assert format_amount(minor, currency) == text
    if minor > 0:
        assert parse_amount(text, currency, field="amount") == minor


def test_unknown_currency_is_refused_naming_the_field():
    """A currency missing from the registry is an error naming the field."""
    with pytest.raises(InvalidArgument, match="currency: unknown currency 'XYZ'"):
        REGISTRY.get("XYZ")


def test_registry_is_configuration():
    """A registry built from configuration knows exactly its currencies."""
    registry = CurrencyRegistry((Currency(code="DOGE", scale=8, amount_max_minor=10**20),))
    assert registry.get("DOGE").scale == 8
    assert "EUR" not in registry
