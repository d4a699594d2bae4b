"""The engine every adapter test talks to: a real `ledger serve` process on a fresh store."""

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.grpc.conftest import RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[RunningServer]:
    """The real engine server on a fresh sqlite store, shared by one test module."""
    workdir = tmp_path_factory.mktemp("engine")
    running = start_server(f"sqlite:///{workdir}/ledger.sqlite3", workdir)
    yield running
    assert stop_server(running) == 0


def postings(engine: RunningServer, key: str) -> dict[str, str]:
    """The postings the engine recorded under an idempotency key, by account."""
    with engine.client() as admin:
        reply = admin.get_transaction(idempotency_key=key)
    return {p.account: p.amount for entry in reply.entries for p in entry.postings}


def self_exclude(engine: RunningServer, player: str, currency: str) -> None:
    """Self-excludes the player for 30 days, through the engine with the admin token."""
    with engine.client() as admin:
        reply = admin.set_limits(
            idempotency_key=f"exclude-{player}-{currency}",
            player_id=player,
            currency=currency,
            self_excluded_until=datetime.now(UTC) + timedelta(days=30),
        )
    assert reply.outcome == "OK"


def raw_exchange(address: str, request: bytes, timeout_s: float = 10.0) -> bytes:
    """Sends hand-written HTTP/1.1 bytes and returns what came back before the server closed.

    A server that keeps the connection open makes this time out, so a caller also learns that
    the connection was closed. A reset after the answer (the server closed with some of our
    bytes unread) ends the read like a close does.
    """
    host, _, port = address.rpartition(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def oversized_requests(path: str, body_size_max: int) -> dict[str, bytes]:
    """Two requests over the bound: one declaring a huge length and sending no body, and one
    chunked (no length declared) whose first chunk is one byte too many and never ends."""
    head = f"POST {path} HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n"
    declared = f"{head}Content-Length: {2**30}\r\n\r\n".encode()
    size = body_size_max + 1
    chunked = f"{head}Transfer-Encoding: chunked\r\n\r\n{size:x}\r\n".encode()
    return {"declared": declared, "chunked": chunked + b" " * size + b"\r\n"}
