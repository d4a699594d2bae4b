"""`ledger-hub88`: serve the Hub88 operator Wallet API in front of a running engine.

    python -m adapters.hub88 --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file hub88.token --provider hub88 --public-key hub88-public.pem \
        --games games.toml --operator-token-file operator.token \
        --sessions-file hub88-sessions.sqlite3 [--workers 2]

Every option can also come from an environment variable, `LEDGER_HUB88_` and the option's
name (`LEDGER_HUB88_ENGINE`); `--help` lists them. Besides the wallet routes it answers
`GET /healthz` and `GET /metrics` (docs/adapters.md).
"""

import hashlib
import socket
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters import limits
from adapters.command_line import (
    EngineOptions,
    InputFile,
    adapter_command,
    async_engine_client,
    engine_client,
    engine_options,
    listen_option,
    read_bytes,
    read_secret,
    usage_error,
)
from adapters.engine_health import EngineHealth, warn_unless_serving
from adapters.http_metrics import HttpMetrics
from adapters.hub88.app import Engine, Settings, create_app
from adapters.hub88.games import load_catalogue
from adapters.hub88.protocol import load_public_key
from adapters.hub88.sessions import SESSION_TTL_S_MAX, SessionStore
from adapters.operator_endpoints import add_operator_endpoints
from adapters.process import serve_on
from adapters.workers import serve_in_workers
from ledger.client import AsyncLedgerClient
from ledger.logs import configure_logging

NAME = "ledger-hub88"


def _settings(games: Path, operator_token_file: Path, provider: str, currency: str) -> Settings:
    try:
        catalogue = load_catalogue(games)
    except (ValueError, OSError) as error:  # tomllib's TOMLDecodeError is a ValueError
        raise usage_error("--games", error) from None
    operator_token = read_secret(operator_token_file, "--operator-token-file")
    return Settings(
        games=catalogue,
        operator_token_sha256=hashlib.sha256(operator_token).hexdigest(),
        provider=provider,
        default_currency=currency,
    )


def _public_key(path: Path):
    try:
        return load_public_key(read_bytes(path, "--public-key"))
    except (ValueError, TypeError) as error:
        raise usage_error("--public-key", error) from None


def _sessions(path: Path, ttl_s: int) -> SessionStore:
    try:
        return SessionStore(path, timedelta(seconds=ttl_s))
    except sqlite3.Error as error:
        raise usage_error("--sessions-file", error) from None


@adapter_command(NAME, "LEDGER_HUB88")
@listen_option("127.0.0.1:8088", "to serve the wallet API on")
@engine_options("game_provider")
@click.option("--provider", default="hub88", help="Provider id used with the engine.")
@click.option(
    "--public-key",
    required=True,
    type=InputFile,
    help="PEM file with the provider's RSA public key.",
)
@click.option("--currency", default="EUR", help="Currency of /user/balance calls.")
@click.option(
    "--games", required=True, type=InputFile, help="TOML game catalogue: [games] code = category."
)
@click.option(
    "--operator-token-file",
    required=True,
    type=InputFile,
    help="File with the bearer token of the operator platform, which opens game "
    "sessions at POST /operator/sessions.",
)
@click.option(
    "--sessions-file",
    default=Path("hub88-sessions.sqlite3"),
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file of open game sessions.",
)
@click.option(
    "--session-ttl-s",
    default=4 * 3600,
    type=click.IntRange(1, SESSION_TTL_S_MAX),
    help="Game session lifetime in seconds.",
)
@click.option(
    "--workers",
    default=1,
    type=click.IntRange(1, limits.http_workers_max),
    help="Worker processes serving the one port (about one per core); they share the "
    "sessions file.",
)
def main(
    listen: str,
    engine: EngineOptions,
    provider: str,
    public_key: Path,
    currency: str,
    games: Path,
    operator_token_file: Path,
    sessions_file: Path,
    session_ttl_s: int,
    workers: int,
) -> None:
    """Serve the Hub88 operator Wallet API in front of a running engine."""
    settings = _settings(games, operator_token_file, provider, currency)
    key = _public_key(public_key)
    make_client = async_engine_client(engine)  # options checked, files read, no channel yet
    _sessions(sessions_file, session_ttl_s).close()  # a bad file is refused before any fork
    configure_logging()
    sessions = (sessions_file, session_ttl_s)
    serve_in_workers(
        listen, workers, partial(_serve_worker, engine, make_client, key, settings, *sessions)
    )


def _serve_worker(
    engine: EngineOptions,
    make_client: Callable[[], AsyncLedgerClient],
    key: rsa.RSAPublicKey,
    settings: Settings,
    sessions_file: Path,
    session_ttl_s: int,
    sock: socket.socket,
) -> None:
    """One worker process: its own channels, session connection and metrics (none of them
    may cross a fork), serving the shared socket."""
    wallet_engine = Engine(make_client)
    # /healthz asks over a blocking channel of its own (its route runs on a worker thread).
    health_client = engine_client(engine, auto_batch=False)
    sessions = _sessions(sessions_file, session_ttl_s)
    health = EngineHealth(health_client.channel, health_client.metadata)
    metrics = HttpMetrics(NAME)
    warn_unless_serving(health, engine.engine)
    app = create_app(wallet_engine, key, settings, sessions)
    add_operator_endpoints(app, health, metrics, engine.engine)
    try:
        serve_on(sock, app, within=wallet_engine.open)
    finally:
        health_client.close()
        sessions.close()
        metrics.shutdown()


if __name__ == "__main__":
    main()
