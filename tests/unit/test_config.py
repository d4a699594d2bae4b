"""Configuration: the currency registry and policy come from TOML, refusals name the field."""

import pytest

from ledger.config import load_rules, rules_from_toml
from ledger.core.errors import InvalidArgument


def test_defaults_without_a_file():
    """No config file means the spec's default currencies and a 10x wagering cap."""
    rules = load_rules(None)
    assert [(c.code, c.scale) for c in rules.currencies][:7] == [
        ("EUR", 6),
        ("USD", 6),
        ("GBP", 6),
        ("BTC", 8),
        ("ETH", 18),
        ("USDT", 6),
        ("TON", 9),
    ]
    assert rules.policy.bonus_multiplier_max == 10


def test_listed_currencies_replace_the_registry_and_set_maximums():
    """Currencies from the file replace the defaults, with their own maximum amount."""
    rules = rules_from_toml(
        b'[[currencies]]\ncode = "EUR"\nscale = 2\namount_max = "500"\n'
        b"[policy]\nbonus_multiplier_max = 5\n[policy.game_category_weights]\nslots = 50\n"
    )
    assert rules.currencies.get("EUR").amount_max_minor == 50_000
    assert "USD" not in rules.currencies
    assert rules.policy.game_category_weights == {"slots": 50}
    assert rules.policy.bonus_multiplier_max == 5


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        (b'[[currencies]]\ncode = "EUR"\nscale = 19\n', "config.currencies[0].scale"),
        (b'[[currencies]]\ncode = "eur"\nscale = 2\n', "config.currencies[0].code"),
        (
            b'[[currencies]]\ncode = "EUR"\nscale = 2\namount_max = "0.001"\n',
            "config.currencies[0].amount_max",
        ),
        (
            b'[[currencies]]\ncode = "EUR"\nscale = 2\n[[currencies]]\ncode = "EUR"\nscale = 2\n',
            "config.currencies[1].code",
        ),
        (b"[policy]\nbonus_multiplier_max = 1000\n", "config.policy.bonus_multiplier_max"),
        (b"[policy]\nsurprise = 1\n", "config.policy"),
        (b"not toml =", "config"),
    ],
)
def test_malformed_config_is_refused_naming_the_field(toml, field):
    """Each malformed setting is refused with its path in the file."""
    with pytest.raises(InvalidArgument) as caught:
        rules_from_toml(toml)
    assert caught.value.field == field


def test_unreadable_file_is_refused(tmp_path):
    """A missing config file is an error naming `config`, not a traceback."""
    with pytest.raises(InvalidArgument, match="config: cannot read"):
        load_rules(tmp_path / "absent.toml")
