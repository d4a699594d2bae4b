"""`ledger-hub88`: serve the Hub88 operator Wallet API in front of a running engine.

    python -m adapters.hub88 --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file hub88.token --provider hub88 --public-key hub88-public.pem \
        --games games.toml --operator-token-file operator.token \
        --sessions-file hub88-sessions.sqlite3
"""

import argparse
import hashlib
from datetime import timedelta
from pathlib import Path

from adapters.hub88.app import Settings, create_app
from adapters.hub88.games import load_catalogue
from adapters.hub88.protocol import load_public_key
from adapters.hub88.sessions import SESSION_TTL_S_MAX, SessionStore
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
    parser.add_argument("--games", required=True, type=Path,
                        help="TOML game catalogue: [games] code = category")  # fmt: skip
    parser.add_argument("--operator-token-file", required=True, type=Path,
                        help="file with the bearer token of the operator platform, which opens "
                        "game sessions at POST /operator/sessions")  # fmt: skip
    parser.add_argument("--sessions-file", default=Path("hub88-sessions.sqlite3"), type=Path,
                        help="SQLite file of open game sessions")  # fmt: skip
    parser.add_argument("--session-ttl-s", default=4 * 3600, type=int,
                        help=f"game session lifetime, at most {SESSION_TTL_S_MAX} s")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the adapter until SIGINT or SIGTERM."""
    arguments = _arguments(argv)
    configure_logging()
    public_key = load_public_key(arguments.public_key.read_bytes())
    operator_token = arguments.operator_token_file.read_text().strip().encode()
    settings = Settings(
        games=load_catalogue(arguments.games),
        operator_token_sha256=hashlib.sha256(operator_token).hexdigest(),
        provider=arguments.provider,
        default_currency=arguments.currency,
    )
    sessions = SessionStore(arguments.sessions_file, timedelta(seconds=arguments.session_ttl_s))
    ledger = engine_client(arguments)
    try:
        serve_http(create_app(ledger, public_key, settings, sessions), arguments.listen)
    finally:
        ledger.close()
        sessions.close()


if __name__ == "__main__":
    main()
