"""`ledger-payments`: receive CoinsPaid-style payment callbacks in front of a running engine.

    python -m adapters.payments --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file payments.token --secret-file coinspaid.secret \
        --state-file payments.sqlite3 --processor coinspaid
"""

import argparse
from pathlib import Path

from adapters.payments.app import Settings, create_app
from adapters.payments.state import CallbackStore
from adapters.process import add_engine_arguments, engine_client, serve_http
from ledger.logs import configure_logging


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
        "--processor", default="coinspaid", help="processor name: rail_id and deposit key prefix"
    )
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
    app = create_app(ledger, store, secret, Settings(processor=arguments.processor))
    try:
        serve_http(app, arguments.listen)
    finally:
        ledger.close()
        store.close()


if __name__ == "__main__":
    main()
