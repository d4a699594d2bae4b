"""`ledger-payments`: receive CoinsPaid-style payment callbacks in front of a running engine.

    python -m adapters.payments --listen 127.0.0.1:0 --engine 127.0.0.1:50051 \
        --token-file payments.token --secret-file coinspaid.secret \
        --state-file payments.sqlite3 --processor coinspaid

The listening socket is bound before uvicorn starts, so with port 0 the line
`listening on HOST:PORT` names the port the OS picked; it is printed once the socket accepts
connections (they queue until uvicorn serves them).
"""

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path

import structlog
import uvicorn

from adapters.payments.app import Settings, create_app
from adapters.payments.state import CallbackStore
from ledger.client import LedgerClient

LISTEN_BACKLOG = 128


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledger-payments", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8089", help="HOST:PORT; port 0 picks one")
    parser.add_argument("--engine", required=True, help="the engine's gRPC HOST:PORT")
    parser.add_argument(
        "--token-file", required=True, type=Path,
        help="file holding the engine bearer token of a payments client",
    )  # fmt: skip
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
    parser.add_argument("--engine-timeout-s", type=float, default=5.0)
    parser.add_argument(
        "--engine-retries", type=int, default=5,
        help="attempts per engine call on UNAVAILABLE / DEADLINE_EXCEEDED",
    )  # fmt: skip
    return parser.parse_args(argv)


def _configure_logging() -> None:
    """JSON lines on standard error, configured once here and nowhere else."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _bound_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    return sock


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """Run the adapter until SIGINT or SIGTERM."""
    arguments = _arguments(argv)
    _configure_logging()
    token = arguments.token_file.read_text().strip()
    secret = arguments.secret_file.read_bytes().strip()
    if not secret:
        raise SystemExit("the secret file is empty")
    ledger = LedgerClient(
        arguments.engine, token,
        timeout_s=arguments.engine_timeout_s, retry_count_max=arguments.engine_retries,
    )  # fmt: skip
    store = CallbackStore(arguments.state_file)
    sock = _bound_socket(arguments.listen)
    host, port = sock.getsockname()[:2]
    app = create_app(ledger, store, secret, Settings(processor=arguments.processor))
    config = uvicorn.Config(app, log_level=logging.WARNING, access_log=False, lifespan="off")
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; ending with status 0 then
    # (and closing the engine channel and the store on the way out) tells a supervisor the
    # stop was clean.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    print(f"listening on {host}:{port}", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        ledger.close()
        store.close()
        sock.close()


if __name__ == "__main__":
    main()
