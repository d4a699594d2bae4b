"""Casino policy that is configuration, not code: bonus caps and wagering weights."""

from dataclasses import dataclass

import msgspec

from ledger.core import limits
from ledger.core.money import CurrencyRegistry

DEFAULT_CATEGORY_WEIGHTS = {
    "slots": 100,
    "crash": 100,
    "instant": 100,
    "table": 10,
    "live": 10,
    "poker": 0,
}


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """Bonus wagering multiplier cap and per-category wagering contribution in percent."""

    bonus_multiplier_max: int = limits.bonus_multiplier_max_default
    game_category_weights: dict[str, int] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS)
    )

    def __post_init__(self) -> None:
        assert 0 <= self.bonus_multiplier_max <= limits.bonus_multiplier_max
        for weight in self.game_category_weights.values():
            assert 0 <= weight <= limits.game_category_weight_percent_max


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything `decide` needs from configuration: currencies and policy."""

    currencies: CurrencyRegistry
    policy: Policy
