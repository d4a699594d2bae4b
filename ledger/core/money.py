"""Money: integer minor units with a per-currency scale, and exact decimal-string parsing.

Amounts never pass through float or Decimal arithmetic inside the engine. A wire amount is a
plain decimal string in major units; anything that would need rounding is refused, never
rounded: more decimals than the scale, a sign, an exponent, whitespace, an empty string, NaN,
or more than the currency's configured maximum.
"""

import re

import msgspec

from ledger.core import limits
from ledger.core.errors import InvalidArgument

_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_CURRENCY_CODE = re.compile(r"[A-Z][A-Z0-9]{1,11}")


class Currency(msgspec.Struct, frozen=True, kw_only=True):
    """A currency or asset: its code, decimals, and the largest amount one command may carry."""

    code: str
    scale: int
    amount_max_minor: int

    def __post_init__(self) -> None:
        assert _CURRENCY_CODE.fullmatch(self.code), self.code
        assert 0 <= self.scale <= 18, self.scale
        assert 0 < self.amount_max_minor <= limits.amount_minor_max


def default_currency(code: str, scale: int) -> Currency:
    """A currency whose maximum is 10^12 major units (capped by the global bound)."""
    amount_max_minor = min(10 ** (12 + scale), limits.amount_minor_max)
    return Currency(code=code, scale=scale, amount_max_minor=amount_max_minor)


DEFAULT_CURRENCIES: tuple[Currency, ...] = (
    default_currency("EUR", 6),
    default_currency("USD", 6),
    default_currency("GBP", 6),
    default_currency("BTC", 8),
    default_currency("ETH", 18),
    default_currency("USDT", 6),
    default_currency("TON", 9),
)


class CurrencyRegistry:
    """The configured currencies, looked up by code with a field-naming refusal."""

    def __init__(self, currencies: tuple[Currency, ...] = DEFAULT_CURRENCIES) -> None:
        codes = [currency.code for currency in currencies]
        assert len(codes) == len(set(codes)), "duplicate currency code"
        self._by_code = {currency.code: currency for currency in currencies}

    def get(self, code: str, *, field: str = "currency") -> Currency:
        """Returns the currency for code, or refuses naming field."""
        if not isinstance(code, str) or not code:
            raise InvalidArgument(field, "is required")
        currency = self._by_code.get(code)
        if currency is None:
            raise InvalidArgument(field, f"unknown currency {code[:16]!r}")
        return currency

    def __iter__(self):
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def parse_amount(text: str, currency: Currency, *, field: str, zero_allowed: bool = False) -> int:
    """Parses a major-unit decimal string into exact minor units, or refuses naming field."""
    if not isinstance(text, str) or text == "":
        raise InvalidArgument(field, "is required")
    if len(text) > limits.amount_digits_max + 1:
        raise InvalidArgument(field, f"has more than {limits.amount_digits_max} digits")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidArgument(field, f"is not a plain decimal number: {text[:32]!r}")
    fraction = match.group("fraction") or ""
    if len(fraction) > currency.scale:
        raise InvalidArgument(
            field, f"has {len(fraction)} decimals, {currency.code} allows {currency.scale}"
        )
    minor = int(match.group("whole") + fraction.ljust(currency.scale, "0"))
    check_amount(minor, currency, field=field, zero_allowed=zero_allowed)
    return minor


def check_amount(minor: int, currency: Currency, *, field: str, zero_allowed: bool = False) -> None:
    """Refuses a minor-unit amount that is not an integer in (0, max], naming field."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise InvalidArgument(field, "must be an integer number of minor units")
    if minor < 0 or (minor == 0 and not zero_allowed):
        raise InvalidArgument(
            field, "must be positive" if not zero_allowed else "must not be negative"
        )
    if minor > currency.amount_max_minor:
        raise InvalidArgument(
            field, f"exceeds the maximum of {format_amount(currency.amount_max_minor, currency)}"
        )


def format_amount(minor: int, currency: Currency) -> str:
    """Formats minor units as a major-unit decimal string, trailing zeros trimmed."""
    if minor == 0:  # most balances' bonus and held: two of the three in every answer
        return "0"
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**currency.scale)
    if currency.scale == 0 or fraction == 0:
        return f"{sign}{whole}"
    digits = str(fraction).rjust(currency.scale, "0").rstrip("0")
    return f"{sign}{whole}.{digits}"
