"""`ledger-hub88`: serve the Hub88 operator Wallet API in front of a running engine.

    python -m adapters.hub88 --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file hub88.token --provider hub88 --public-key hub88-public.pem
"""

import argparse
from pathlib import Path

from adapters.hub88.app import Settings, create_app
from adapters.hub88.protocol import load_public_key
from adapters.process import add_engine_arguments, engine_client, serve_http
from ledger.logs import configure_logging


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledger-hub88", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8088", help="HOST:PORT; port 0 picks one")
    add_engine_arguments(parser, "game_provider")
    parser.add_argument("--provider", default="hub88", help="provider id used with the engine")
    parser.add_argument(
        "--public-key", required=True, type=Path, help="PEM file with the provider's RSA public key"
    )
    parser.add_argument("--currency", default="EUR", help="currency of /user/balance calls")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the adapter until SIGINT or SIGTERM."""
    arguments = _arguments(argv)
    configure_logging()
    public_key = load_public_key(arguments.public_key.read_bytes())
    settings = Settings(provider=arguments.provider, default_currency=arguments.currency)
    ledger = engine_client(arguments)
    try:
        serve_http(create_app(ledger, public_key, settings), arguments.listen)
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
