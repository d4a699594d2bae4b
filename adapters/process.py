"""What every adapter process shares: the engine connection options and client, a clean exit
on SIGTERM or SIGINT, and serving an HTTP app on a socket bound before uvicorn starts.

Binding first means that with port 0 the line `listening on HOST:PORT` names the port the OS
picked; it is printed once the socket accepts connections (they queue until uvicorn serves).
"""

import argparse
import logging
import signal
import socket
from pathlib import Path

import uvicorn

from ledger.client import LedgerClient

LISTEN_BACKLOG = 128


def add_engine_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """--engine, --token-file (a client of `role`), --engine-timeout-s, --engine-retries."""
    parser.add_argument("--engine", required=True, help="the engine's gRPC HOST:PORT")
    parser.add_argument(
        "--token-file", required=True, type=Path,
        help=f"file holding the engine bearer token of a {role} client",
    )  # fmt: skip
    parser.add_argument("--engine-timeout-s", type=float, default=5.0)
    parser.add_argument(
        "--engine-retries", type=int, default=5,
        help="attempts per engine call on UNAVAILABLE / DEADLINE_EXCEEDED",
    )  # fmt: skip


def engine_client(arguments: argparse.Namespace) -> LedgerClient:
    """The engine client the engine arguments describe. It auto-batches: the app's worker
    threads' concurrent commands reach the engine as SubmitBatch frames."""
    token = arguments.token_file.read_text().strip()
    return LedgerClient(
        arguments.engine, token, auto_batch=True,
        timeout_s=arguments.engine_timeout_s, retry_count_max=arguments.engine_retries,
    )  # fmt: skip


def exit_cleanly_on_signals() -> None:
    """SIGTERM and SIGINT end the process with status 0, running `finally` blocks on the way.

    uvicorn re-raises them after its graceful shutdown; ending with status 0 then tells a
    supervisor the stop was clean.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def bound_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and accepted sockets inherit it; without it Nagle and delayed ACKs stall
    # every pipelined answer ~40 ms (benchmarks/README.md, the Hub88 cell).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    return sock


def serve_http(app, listen: str) -> None:
    """Serves app on listen until SIGTERM or SIGINT; announces the bound address first."""
    sock = bound_socket(listen)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level=logging.WARNING, access_log=False, lifespan="off")
    exit_cleanly_on_signals()
    print(f"listening on {host}:{port}", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
