"""Engine configuration: the currency registry and the casino policy, from a TOML file.

Example (every table optional; omitted parts keep the defaults in docs/contract.md, "Money"):

    [[currencies]]
    code = "EUR"
    scale = 6
    amount_max = "1000000"        # major units, the largest amount one command may carry

    [policy]
    bonus_multiplier_max = 10
    [policy.game_category_weights]
    slots = 100
    table = 10

Listing currencies replaces the default registry. Malformed files are refused with the
offending field's path (`config.currencies[0].scale: ...`).
"""

from pathlib import Path
from typing import Annotated

import msgspec

from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.core.money import (
    DEFAULT_CURRENCIES,
    Currency,
    CurrencyRegistry,
    default_currency,
    parse_amount,
)
from ledger.core.policy import Policy, Rules
from ledger.files import read_bounded

CONFIG_SIZE_MAX = 1_000_000  # bytes

Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9]{1,11}$")]
Scale = Annotated[int, msgspec.Meta(ge=0, le=18)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=limits.game_category_weight_percent_max)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.game_category_length_max)]


class CurrencyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    scale: Scale
    amount_max: str | None = None


class PolicyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    bonus_multiplier_max: Annotated[int, msgspec.Meta(ge=0, le=limits.bonus_multiplier_max)] = (
        limits.bonus_multiplier_max_default
    )
    game_category_weights: dict[Category, Weight] | None = None


class LedgerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    currencies: list[CurrencyConfig] | None = None
    policy: PolicyConfig = PolicyConfig()


def load_rules(path: str | Path | None) -> Rules:
    """The rules from a TOML file, or the defaults when path is None."""
    if path is None:
        return Rules(CurrencyRegistry(), Policy())
    return rules_from_toml(read_bounded(path, CONFIG_SIZE_MAX, field="config"))


def rules_from_toml(text: bytes) -> Rules:
    try:
        config = msgspec.toml.decode(text, type=LedgerConfig)
    except msgspec.ValidationError as error:
        field, _, reason = str(error).rpartition(" - at `$")
        path = reason.rstrip("`") if field else ""
        raise InvalidArgument(f"config{path}", field or str(error)) from None
    except msgspec.DecodeError as error:
        raise InvalidArgument("config", f"is not valid TOML: {error}") from None
    return Rules(_registry(config.currencies), _policy(config.policy))


def _registry(currencies: list[CurrencyConfig] | None) -> CurrencyRegistry:
    if currencies is None:
        return CurrencyRegistry(DEFAULT_CURRENCIES)
    built: list[Currency] = []
    for index, entry in enumerate(currencies):
        if any(currency.code == entry.code for currency in built):
            raise InvalidArgument(f"config.currencies[{index}].code", f"repeats {entry.code}")
        built.append(_currency(entry, f"config.currencies[{index}].amount_max"))
    return CurrencyRegistry(tuple(built))


def _currency(entry: CurrencyConfig, field: str) -> Currency:
    currency = default_currency(entry.code, entry.scale)
    if entry.amount_max is None:
        return currency
    ceiling = Currency(code=entry.code, scale=entry.scale, amount_max_minor=limits.amount_minor_max)
    amount_max_minor = parse_amount(entry.amount_max, ceiling, field=field)
    return Currency(code=entry.code, scale=entry.scale, amount_max_minor=amount_max_minor)


def _policy(config: PolicyConfig) -> Policy:
    if config.game_category_weights is None:
        return Policy(bonus_multiplier_max=config.bonus_multiplier_max)
    return Policy(
        bonus_multiplier_max=config.bonus_multiplier_max,
        game_category_weights=dict(config.game_category_weights),
    )
