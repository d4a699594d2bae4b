"""Money's scale is part of the store: the first start records each currency's decimal
places, and a later configuration that changes one or drops a currency is refused, naming
the currency and both values, before anything is served."""

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.config import rules_from_toml
from ledger.core.errors import InvalidArgument
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.currency_scales import CURRENCIES_STREAM_ID, recorded_scales
from tests.builders import EUR, deposit
from tests.integration.raw_store import RawStore


def _config(**scales: int) -> bytes:
    return "".join(
        f'[[currencies]]\ncode = "{code}"\nscale = {scale}\n' for code, scale in scales.items()
    ).encode()


EUR_AT_2 = _config(EUR=2, USD=6, BTC=8, ETH=18)
EUR_ONLY = _config(EUR=6)
EUR_AND_DOGE = _config(EUR=6, DOGE=8)


def _scales(database_url: str) -> dict[str, int]:
    with Ledger(database_url, currency_scales="ignore") as ledger:
        return recorded_scales(ledger.log)[1]


def test_the_first_start_records_every_configured_scale(database_url):
    """A new store holds the default registry's scales once it has been opened."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", EUR))
    assert _scales(database_url) == {
        "EUR": 6,
        "USD": 6,
        "GBP": 6,
        "USDT": 6,
        "BTC": 8,
        "ETH": 18,
        "TON": 9,
    }


def test_a_changed_scale_or_a_dropped_currency_is_refused_and_writes_nothing(database_url):
    """EUR at 2 decimals on a 6-decimal store is refused naming EUR, 2 and 6, and the
    currencies it dropped by name; the store is left as it was."""
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d1", 44_066_859))
    rows = RawStore(database_url).count()
    with pytest.raises(InvalidArgument) as refused:
        Ledger(database_url, rules=rules_from_toml(EUR_AT_2))
    message = str(refused.value)
    assert refused.value.field == "config.currencies"
    assert "EUR has scale 2 in the configuration but 6 in the store" in message
    assert "TON is in the store (scale 9) but not in the configuration" in message
    assert RawStore(database_url).count() == rows


def test_an_added_currency_extends_the_record_and_then_binds_too(database_url):
    """A configuration adding DOGE (and keeping the rest) is recorded; dropping it later is
    refused."""
    Ledger(database_url, rules=rules_from_toml(EUR_ONLY)).close()
    with Ledger(database_url, rules=rules_from_toml(EUR_AND_DOGE)) as ledger:
        assert ledger.execute(deposit("d1", EUR)).outcome is Outcome.OK
    assert _scales(database_url) == {"EUR": 6, "DOGE": 8}
    with pytest.raises(InvalidArgument, match=r"DOGE is in the store .scale 8."):
        Ledger(database_url, rules=rules_from_toml(EUR_ONLY))


def test_serve_and_demo_refuse_a_configuration_the_store_contradicts(tmp_path):
    """`ledger serve` and `ledger demo` exit with a usage error naming the currency and both
    scales, never serving an amount at the wrong scale."""
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    config = tmp_path / "eur2.toml"
    config.write_bytes(EUR_AT_2)
    with Ledger(url) as ledger:
        ledger.execute(deposit("d1", 44_066_859))
    runner = CliRunner()
    served = runner.invoke(
        main,
        [
            "--config",
            str(config),
            "serve",
            "--database-url",
            url,
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(tmp_path),
        ],
    )
    assert served.exit_code == 2
    assert "EUR has scale 2 in the configuration but 6 in the store" in served.output
    played = runner.invoke(
        main, ["--config", str(config), "demo", "--database-url", url, "--no-fresh"]
    )
    assert played.exit_code == 2
    assert "EUR has scale 2" in played.output


def test_the_export_checks_scales_and_the_audit_needs_none(tmp_path):
    """The export formats amounts, so it refuses a contradicting configuration; the audit
    and checkpoints work in minor units and open any store."""
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    config = tmp_path / "eur2.toml"
    config.write_bytes(EUR_AT_2)
    with Ledger(url) as ledger:
        ledger.execute(deposit("d1", EUR))
    runner = CliRunner()
    exported = runner.invoke(main, ["--config", str(config), "export", "--database-url", url])
    assert exported.exit_code == 2 and "EUR has scale 2" in exported.output
    audited = runner.invoke(
        main, ["--config", str(config), "audit", "--database-url", url, "--no-projections"]
    )
    assert audited.exit_code == 0, audited.output


def test_a_store_with_events_but_no_recorded_scales_is_adopted_only_on_request(tmp_path):
    """A store written before scales were recorded is refused (its scale is unknown) until
    the operator adopts the configuration's scales with --adopt-currency-scales."""
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    with Ledger(url) as ledger:
        ledger.execute(deposit("d1", 44_066_859))
    RawStore(url).delete(CURRENCIES_STREAM_ID, 1)  # as a store from before the record
    with pytest.raises(InvalidArgument, match="no recorded currency scales"):
        Ledger(url, rules=rules_from_toml(EUR_AT_2))
    result = CliRunner().invoke(
        main,
        ["serve", "--database-url", url, "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path)],
    )
    assert result.exit_code == 2 and "--adopt-currency-scales" in result.output
    Ledger(url, currency_scales="adopt").close()
    assert _scales(url)["EUR"] == 6
