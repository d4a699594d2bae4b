"""What every adapter process shares: a clean exit on SIGTERM or SIGINT, and serving an HTTP
app on a socket bound before uvicorn starts, in the foreground or on a thread of its own.

Binding first means that with port 0 the line `listening on HOST:PORT` names the port the OS
picked; it is printed once the socket accepts connections (they queue until uvicorn serves).
"""

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import click
import uvicorn

from adapters import limits

LISTEN_BACKLOG = 128


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
    """A listening socket on HOST:PORT, or a one-line error naming the address."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and accepted sockets inherit it; without it Nagle and delayed ACKs stall
    # every pipelined answer ~40 ms (benchmarks/README.md, the Hub88 cell).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise click.ClickException(f"cannot listen on {listen}: {reason}") from None
    return sock


def announced(sock: socket.socket) -> None:
    """Prints `listening on HOST:PORT` for a bound socket (what a supervisor waits for)."""
    host, port = sock.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)


def _uvicorn_config(app) -> uvicorn.Config:
    return uvicorn.Config(app, log_level=logging.WARNING, access_log=False, lifespan="off")


Within = Callable[[], AbstractAsyncContextManager]


def serve_http(app, listen: str) -> None:
    """Serves app on listen until SIGTERM or SIGINT; announces the bound address first."""
    sock = bound_socket(listen)
    exit_cleanly_on_signals()
    announced(sock)
    try:
        serve_on(sock, app)
    finally:
        sock.close()


def serve_on(sock: socket.socket, app, within: Within | None = None) -> None:
    """Serves app on an announced listening socket until SIGTERM or SIGINT.

    `within`, if given, is entered inside the server's event loop before it serves and left
    after it stops: what must be made in that loop (a grpc.aio channel) is made there.
    """
    server = uvicorn.Server(_uvicorn_config(app))
    if within is None:
        server.run(sockets=[sock])
    else:
        asyncio.run(_serve_within(server, sock, within))


async def _serve_within(server: uvicorn.Server, sock: socket.socket, within: Within) -> None:
    async with within():
        await server.serve(sockets=[sock])


class BackgroundHttp:
    """An HTTP app served on a thread of its own (uvicorn leaves signals to the main thread),
    for a process whose main thread has other work; `close` stops it."""

    def __init__(self, app, listen: str) -> None:
        self._sock = bound_socket(listen)
        self._server = uvicorn.Server(_uvicorn_config(app))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="adapter-http",
            daemon=True,
        )
        self._thread.start()
        announced(self._sock)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=limits.http_shutdown_grace_s)
        self._sock.close()
