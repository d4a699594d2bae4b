"""`ledger-payments`: receive CoinsPaid-style payment callbacks in front of a running engine.

    python -m adapters.payments --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file payments.token --secret-file coinspaid.secret \
        --state-file payments.sqlite3 --processor coinspaid [--currency USDC:6 ...]

Every option can also come from an environment variable, `LEDGER_PAYMENTS_` and the option's
name (`LEDGER_PAYMENTS_ENGINE`; `LEDGER_PAYMENTS_CURRENCY="USDC:6 BTC:8"` for several
currencies); `--help` lists them. Besides `/callbacks` it answers `GET /healthz` and
`GET /metrics` (docs/adapters.md).
"""

import re
import sqlite3
from pathlib import Path

import click

from adapters import limits
from adapters.command_line import (
    EngineOptions,
    InputFile,
    adapter_command,
    engine_client,
    engine_options,
    listen_option,
    read_secret,
    usage_error,
)
from adapters.engine_health import EngineHealth, warn_unless_serving
from adapters.http_metrics import HttpMetrics
from adapters.operator_endpoints import add_operator_endpoints
from adapters.payments.app import Settings, create_app, default_currencies
from adapters.payments.state import CallbackStore
from adapters.process import serve_http
from ledger.client import Currency, default_currency
from ledger.logs import configure_logging

NAME = "ledger-payments"
_CURRENCY = re.compile(r"(?P<code>[A-Z][A-Z0-9]{1,11}):(?P<scale>[0-9]{1,2})")
# The processor's name starts every engine key the adapter derives, joined with ":".
_PROCESSOR = re.compile(rf"[^:\s]{{1,{limits.processor_length_max}}}")


class CurrencyType(click.ParamType):
    """CODE:SCALE, as the engine's currency configuration lists it (`BTC:8`)."""

    name = "CODE:SCALE"

    def convert(self, value, param, ctx) -> Currency:
        if isinstance(value, Currency):
            return value
        match = _CURRENCY.fullmatch(value)
        if match is None or int(match["scale"]) > 18:
            self.fail(f"{value!r} is not CODE:SCALE with a scale of 0 to 18", param, ctx)
        return default_currency(match["code"], int(match["scale"]))


def _processor(context: click.Context, parameter: click.Parameter, text: str) -> str:
    if not _PROCESSOR.fullmatch(text):
        raise click.BadParameter(
            f"{text!r} must be 1 to {limits.processor_length_max} characters, no ':' or blank"
        )
    return text


def _store(path: Path) -> CallbackStore:
    try:
        return CallbackStore(path)
    except sqlite3.Error as error:
        raise usage_error("--state-file", error) from None


@adapter_command(NAME, "LEDGER_PAYMENTS")
@listen_option("127.0.0.1:8089", "to receive callbacks on")
@engine_options("payments")
@click.option(
    "--secret-file",
    required=True,
    type=InputFile,
    help="File holding the processor's HMAC secret (surrounding whitespace is ignored).",
)
@click.option(
    "--state-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The adapter's own SQLite file.",
)
@click.option(
    "--processor",
    default="coinspaid",
    callback=_processor,
    help="Processor name: rail_id and deposit key prefix.",
)
@click.option(
    "--currency",
    "currencies",
    multiple=True,
    type=CurrencyType(),
    envvar="LEDGER_PAYMENTS_CURRENCY",
    show_default="the engine's defaults",
    help="A currency the engine is configured with (repeat for each); listing any "
    "replaces the engine's default currencies, as the engine's own configuration "
    "does; in the environment, separate them with spaces.",
)
def main(
    listen: str,
    engine: EngineOptions,
    secret_file: Path,
    state_file: Path,
    processor: str,
    currencies: tuple[Currency, ...],
) -> None:
    """Receive CoinsPaid-style payment callbacks in front of a running engine."""
    secret = read_secret(secret_file, "--secret-file")
    ledger = engine_client(engine)
    store = _store(state_file)
    configure_logging()
    chosen = {c.code: c for c in currencies} if currencies else default_currencies()
    settings = Settings(processor=processor, currencies=chosen)
    health = EngineHealth(ledger.channel, ledger.metadata)
    metrics = HttpMetrics(NAME)
    warn_unless_serving(health, engine.engine)
    app = create_app(ledger, store, secret, settings)
    add_operator_endpoints(app, health, metrics, engine.engine)
    try:
        serve_http(app, listen)
    finally:
        ledger.close()
        store.close()
        metrics.shutdown()


if __name__ == "__main__":
    main()
