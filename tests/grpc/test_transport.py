"""Transport concerns of `ledger serve`: TLS, mutual TLS, the asyncio client, the bound on
concurrent calls, and the first-start admin token (draining on SIGTERM under load is in the
fault suite, tests/faults/test_drain.py)."""

import asyncio
import signal
import stat
import subprocess
import sys
import threading

import grpc
import pytest

from ledger.client import AsyncLedgerClient, LedgerClient, Overloaded, Unavailable
from tests.grpc.certificates import write_certificates
from tests.grpc.conftest import start_server, stop_server

pytestmark = pytest.mark.slow


def _deposit(client, key: str, player: str = "p1"):
    return client.deposit(
        idempotency_key=key,
        player_id=player,
        currency="EUR",
        amount="1",
        rail="psp",
        rail_id="stripe",
    )


def test_tls_server_accepts_trusting_clients_only(tmp_path):
    """With --tls-cert/--tls-key a client trusting the CA gets through; plaintext does not."""
    certs = write_certificates(tmp_path)
    server = start_server(
        f"sqlite:///{tmp_path}/tls.sqlite3",
        tmp_path,
        "--tls-cert",
        str(certs["server"]),
        "--tls-key",
        str(certs["server_key"]),
    )
    try:
        client = LedgerClient(
            server.target,
            server.tokens["admin"],
            root_certificates=certs["ca"].read_bytes(),
            retry_count_max=1,
        )
        assert _deposit(client, "d1").outcome == "OK"
        plain = LedgerClient(server.target, server.tokens["admin"], retry_count_max=1, timeout_s=2)
        with pytest.raises(Unavailable) as caught:
            _deposit(plain, "d2")
        assert caught.value.status == "UNAVAILABLE"
    finally:
        assert stop_server(server) == 0


def test_mutual_tls_requires_a_client_certificate(tmp_path):
    """With --tls-client-ca only clients presenting a certificate from that CA get through."""
    certs = write_certificates(tmp_path)
    server = start_server(
        f"sqlite:///{tmp_path}/mtls.sqlite3",
        tmp_path,
        "--tls-cert",
        str(certs["server"]),
        "--tls-key",
        str(certs["server_key"]),
        "--tls-client-ca",
        str(certs["ca"]),
    )
    try:
        root = certs["ca"].read_bytes()
        with_cert = LedgerClient(
            server.target,
            server.tokens["admin"],
            root_certificates=root,
            private_key=certs["client_key"].read_bytes(),
            certificate_chain=certs["client"].read_bytes(),
            retry_count_max=1,
        )
        assert _deposit(with_cert, "d1").outcome == "OK"
        without = LedgerClient(
            server.target,
            server.tokens["admin"],
            root_certificates=root,
            retry_count_max=1,
            timeout_s=2,
        )
        with pytest.raises(Unavailable) as caught:
            _deposit(without, "d2")
        assert caught.value.status == "UNAVAILABLE"
    finally:
        assert stop_server(server) == 0


def test_async_client_applies_commands_concurrently(server):
    """The asyncio client sends many commands at once and gets each answer."""

    async def run():
        async with AsyncLedgerClient(server.target, server.tokens["payments"]) as client:
            replies = await asyncio.gather(
                *(
                    client.deposit(
                        idempotency_key=f"async-{n}",
                        player_id="async-player",
                        currency="USD",
                        amount="2.5",
                        rail="psp",
                        rail_id="stripe",
                    )
                    for n in range(20)
                )
            )
            balances, version = await client.get_balance(player_id="async-player", currency="USD")
        return replies, balances, version

    replies, balances, version = asyncio.run(run())
    assert {reply.outcome for reply in replies} == {"OK"}
    assert (balances.cash, version) == ("50", 21)


def test_first_start_writes_an_admin_token_readable_by_the_owner_only(tmp_path):
    """Without --auth-config the server creates a 0600 admin token file and keeps its hash."""
    state = tmp_path / "state"
    command = [
        sys.executable,
        "-m",
        "ledger",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        f"sqlite:///{tmp_path}/boot.sqlite3",
        "--state-dir",
        str(state),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        first = process.stdout.readline()
        listening = process.stdout.readline()
        assert first.startswith(f"admin token written to {state / 'admin-token'}")
        token = (state / "admin-token").read_text().strip()
        assert stat.S_IMODE((state / "admin-token").stat().st_mode) == 0o600
        assert token not in (state / "admin-token.sha256").read_text()
        target = listening.removeprefix("listening on ").strip()
        assert _deposit(LedgerClient(target, token), "boot-1").outcome == "OK"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_calls_past_the_concurrency_bound_are_resource_exhausted(tmp_path):
    """With a bound of 2 concurrent calls and a slow group window, extra calls are refused."""
    server = start_server(
        f"sqlite:///{tmp_path}/bound.sqlite3",
        tmp_path,
        "--max-concurrent-calls",
        "2",
        "--group-window-ms",
        "100",
    )
    codes: list[str] = []

    def send(n: int) -> None:
        client = LedgerClient(server.target, server.tokens["admin"], retry_count_max=1)
        try:
            codes.append(_deposit(client, f"bound-{n}", player=f"b{n}").outcome)
        except Overloaded as error:
            assert error.retry_delay_s is None  # gRPC's own cap: no RetryInfo, not resent
            codes.append(error.status)

    try:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert "RESOURCE_EXHAUSTED" in codes and "OK" in codes
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}
    finally:
        assert stop_server(server) == 0


def test_the_client_resends_while_the_server_is_unavailable(tmp_path):
    """UNAVAILABLE is retried up to the bound (safe: commands are idempotent), then raised."""
    client = LedgerClient("127.0.0.1:1", "token", retry_count_max=3, timeout_s=1)
    with pytest.raises(Unavailable) as caught:
        _deposit(client, "never")
    assert (caught.value.status, caught.value.attempts) == ("UNAVAILABLE", 3)
    assert caught.value.__cause__.code() is grpc.StatusCode.UNAVAILABLE
