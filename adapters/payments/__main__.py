"""`ledger-payments`: receive CoinsPaid-style payment callbacks in front of a running engine.

    python -m adapters.payments --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file payments.token --secret-file coinspaid.secret \
        --state-file payments.sqlite3 --processor coinspaid [--currency USDC:6 ...]
"""

import argparse
import re
from pathlib import Path

from adapters import limits
from adapters.payments.app import Settings, create_app, default_currencies
from adapters.payments.state import CallbackStore
from adapters.process import add_engine_arguments, engine_client, serve_http
from ledger.client import Currency, default_currency
from ledger.logs import configure_logging

_CURRENCY = re.compile(r"(?P<code>[A-Z][A-Z0-9]{1,11}):(?P<scale>[0-9]{1,2})")
# The processor's name starts every engine key the adapter derives, joined with ":".
_PROCESSOR = re.compile(rf"[^:\s]{{1,{limits.processor_length_max}}}")


def _currency(text: str) -> Currency:
    """CODE:SCALE, as the engine's currency configuration lists it (`BTC:8`)."""
    match = _CURRENCY.fullmatch(text)
    if match is None or int(match["scale"]) > 18:
        raise argparse.ArgumentTypeError(f"{text!r} is not CODE:SCALE with a scale of 0 to 18")
    return default_currency(match["code"], int(match["scale"]))


def _processor(text: str) -> str:
    if not _PROCESSOR.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} must be 1 to {limits.processor_length_max} characters, no ':' or blank"
        )
    return text


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledger-payments", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8089", help="HOST:PORT; port 0 picks one")
    add_engine_arguments(parser, "payments")
    parser.add_argument(
        "--secret-file", required=True, type=Path,
        help="file holding the processor's HMAC secret (surrounding whitespace is ignored)",
    )  # fmt: skip
    parser.add_argument(
        "--state-file", required=True, type=Path, help="the adapter's own SQLite file"
    )
    parser.add_argument(
        "--processor", default="coinspaid", type=_processor,
        help="processor name: rail_id and deposit key prefix",
    )  # fmt: skip
    parser.add_argument(
        "--currency", action="append", type=_currency, dest="currencies", metavar="CODE:SCALE",
        help="a currency the engine is configured with (repeat for each); listing any replaces "
        "the engine's default currencies, as the engine's own configuration does",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the adapter until SIGINT or SIGTERM."""
    arguments = _arguments(argv)
    configure_logging()
    secret = arguments.secret_file.read_bytes().strip()
    if not secret:
        raise SystemExit("the secret file is empty")
    ledger = engine_client(arguments)
    store = CallbackStore(arguments.state_file)
    currencies = (
        {currency.code: currency for currency in arguments.currencies}
        if arguments.currencies
        else default_currencies()
    )
    settings = Settings(processor=arguments.processor, currencies=currencies)
    app = create_app(ledger, store, secret, settings)
    try:
        serve_http(app, arguments.listen)
    finally:
        ledger.close()
        store.close()


if __name__ == "__main__":
    main()
