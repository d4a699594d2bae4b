"""The operator endpoints of every adapter, over real HTTP to real adapter and engine
processes: /healthz follows the engine, /metrics counts requests, and neither weakens the
signature checks of the wallet and callback routes."""

import concurrent.futures
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters import limits
from adapters.hub88 import protocol as hub88_protocol
from adapters.payments import protocol as payments_protocol
from tests.adapters.test_command_line import ADAPTER_ENVIRONMENT, dead_engine
from tests.adapters.test_hub88 import _start_adapter as start_hub88
from tests.grpc.certificates import write_certificates
from tests.grpc.conftest import (
    start_announcing,
    start_server,
    stop_process,
    stop_server,
    write_auth_config,
)

SECRET = b"operator-endpoints-secret"
# A /healthz answer against a dead engine: one check's deadline, plus room for a loaded machine.
HEALTH_ANSWER_S_MAX = limits.engine_health_timeout_ms / 1000 + 2


def _environment(**options: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ADAPTER_ENVIRONMENT)}
    return clean | options


def _start_payments(workdir: Path, engine: str, token: str):
    """The payments adapter with its engine and files given as LEDGER_PAYMENTS_* variables."""
    (workdir / "payments.token").write_text(token)
    (workdir / "secret").write_bytes(SECRET)
    environment = _environment(
        LEDGER_PAYMENTS_ENGINE=engine,
        LEDGER_PAYMENTS_TOKEN_FILE=str(workdir / "payments.token"),
        LEDGER_PAYMENTS_SECRET_FILE=str(workdir / "secret"),
        LEDGER_PAYMENTS_STATE_FILE=str(workdir / "payments.sqlite3"),
        LEDGER_PAYMENTS_LISTEN="127.0.0.1:0",
    )
    command = [sys.executable, "-m", "adapters.payments"]
    return start_announcing(command, workdir / "adapter.log", env=environment)


@pytest.fixture(scope="module")
def payments(engine, tmp_path_factory) -> Iterator[httpx.Client]:
    """A payments adapter in front of the running engine, configured from the environment."""
    workdir = tmp_path_factory.mktemp("payments-operator")
    process, address = _start_payments(workdir, engine.target, engine.tokens["payments"])
    with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
        yield http
    assert stop_process(process) == 0


def test_healthz_is_200_while_the_engine_serves(payments):
    """/healthz answers 200 with the engine's status; the engine came from the environment."""
    answer = payments.get("/healthz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"
    assert answer.json()["engine_status"] == "SERVING"


def test_metrics_count_requests_by_route_and_status(payments):
    """After a refused callback, /metrics holds its counter (route, status) and latency."""
    refused = payments.post(
        "/callbacks", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 401
    text = payments.get("/metrics").text
    counted = [
        line for line in text.splitlines() if line.startswith("adapter_http_requests_total{")
    ]
    assert any('route="/callbacks"' in line and 'status="401"' in line for line in counted), text
    assert "adapter_http_duration_milliseconds_bucket{" in text


def test_unknown_paths_are_one_series(payments):
    """Made-up paths are counted as route `unmatched`, never by their raw path."""
    assert payments.get("/no/such/path-4711").status_code == 404
    text = payments.get("/metrics").text
    assert 'route="unmatched"' in text
    assert "path-4711" not in text


def test_callbacks_still_need_a_signature(payments):
    """A callback with a wrong signature is still 401: the operator routes changed nothing."""
    headers = {"Content-Type": "application/json", payments_protocol.SIGNATURE_HEADER: "00"}
    assert payments.post("/callbacks", content=b"{}", headers=headers).status_code == 401


def test_hub88_serves_the_operator_endpoints_and_still_checks_signatures(engine, tmp_path):
    """Hub88: /healthz and /metrics answer unsigned, while an unsigned bet is refused."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    process, address = start_hub88(tmp_path, engine.target, engine.tokens["hub88"], key)
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            assert http.get("/healthz").status_code == 200
            bet = http.post("/transaction/bet", json={"user": "p", "request_uuid": "r"})
            assert bet.json()["status"] == hub88_protocol.RS_ERROR_INVALID_SIGNATURE
            text = http.get("/metrics").text
        assert 'route="/transaction/bet"' in text
        assert 'route="/healthz"' in text
    finally:
        assert stop_process(process) == 0


def test_healthz_is_503_without_an_engine_in_bounded_time(tmp_path):
    """With no engine the adapter starts anyway; /healthz is 503 with the reason, quickly,
    and a burst of probes is answered from one check."""
    process, address = _start_payments(tmp_path, dead_engine(), "token")
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            started = time.monotonic()
            answer = http.get("/healthz")
            assert time.monotonic() - started < HEALTH_ANSWER_S_MAX
            assert answer.status_code == 503
            assert answer.json()["engine_status"] == "UNREACHABLE"
            assert answer.json()["reason"].startswith("UNAVAILABLE")
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(lambda _: http.get("/healthz").status_code, range(32)))
            assert codes == [503] * 32
            assert time.monotonic() - started < 4 * HEALTH_ANSWER_S_MAX
    finally:
        assert stop_process(process) == 0
    assert "engine_not_serving_at_startup" in (tmp_path / "adapter.log").read_text()


def test_chain_listen_serves_healthz_and_metrics(engine, tmp_path):
    """`ledger-chain --listen` serves /healthz (200 with the engine up) and /metrics with its
    poll counter, and stops cleanly on SIGTERM."""
    (tmp_path / "chain.token").write_text(engine.tokens["chain"])
    (tmp_path / "chain.toml").write_text("[chain]\nrescan_blocks = 5\n")
    command = [
        sys.executable,
        "-m",
        "adapters.chain",
        "--engine",
        engine.target,
        "--token-file",
        str(tmp_path / "chain.token"),
        "--rpc-url",
        "http://127.0.0.1:1",
        "--config",
        str(tmp_path / "chain.toml"),
        "--state-file",
        str(tmp_path / "chain.sqlite3"),
        "--poll-s",
        "0.05",
        "--listen",
        "127.0.0.1:0",
    ]
    process, address = start_announcing(command, tmp_path / "chain.log", env=_environment())
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            assert http.get("/healthz").status_code == 200
            text = _metrics_once_polled(http)
        assert "adapter_chain_polls_total{" in text
        assert 'route="/healthz"' in text
    finally:
        assert stop_process(process) == 0


def _metrics_once_polled(http: httpx.Client) -> str:
    """The chain adapter's metrics once its first poll (failing: no node) is counted."""
    deadline = time.monotonic() + 10
    while True:
        text = http.get("/metrics").text
        if "adapter_chain_polls_total{" in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_an_adapter_started_before_its_engine_turns_healthy_when_it_comes(tmp_path):
    """Started with no engine, the adapter runs (503); once the engine listens on the address,
    /healthz turns 200 within a reconnect backoff and a cache interval, with no restart."""
    engine_address = dead_engine()
    tokens = write_auth_config(tmp_path / "auth.toml")
    process, address = _start_payments(tmp_path, engine_address, tokens["payments"])
    server = None
    try:
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            assert http.get("/healthz").status_code == 503
            time.sleep(limits.engine_reconnect_backoff_max_ms / 1000 * 3)  # a few failed attempts
            server = start_server(
                f"sqlite:///{tmp_path}/ledger.sqlite3",
                tmp_path,
                listen=engine_address,
                tokens=tokens,
            )
            waited_s = _until_healthy(http)
        bound_s = (limits.engine_reconnect_backoff_max_ms + limits.engine_health_cache_ms) / 1000
        assert waited_s < bound_s + 3  # slack for a loaded machine
    finally:
        assert stop_process(process) == 0
        if server is not None:
            assert stop_server(server) == 0


def _until_healthy(http: httpx.Client, timeout_s: float = 30) -> float:
    """Seconds until /healthz answers 200 (at most timeout_s)."""
    started = time.monotonic()
    while http.get("/healthz").status_code != 200:
        assert time.monotonic() - started < timeout_s, "the adapter never saw the engine"
        time.sleep(0.05)
    return time.monotonic() - started


def test_engine_tls_options_reach_an_engine_asking_for_mutual_tls(tmp_path):
    """--engine-tls-ca/-cert/-key connect the adapter to an engine started with mutual TLS;
    its /healthz is 200 through that channel."""
    certs = write_certificates(tmp_path)
    server = start_server(
        f"sqlite:///{tmp_path}/tls.sqlite3",
        tmp_path,
        "--tls-cert",
        str(certs["server"]),
        "--tls-key",
        str(certs["server_key"]),
        "--tls-client-ca",
        str(certs["ca"]),
    )
    (tmp_path / "payments.token").write_text(server.tokens["payments"])
    (tmp_path / "secret").write_bytes(SECRET)
    command = [
        sys.executable,
        "-m",
        "adapters.payments",
        "--listen",
        "127.0.0.1:0",
        "--engine",
        server.target,
        "--token-file",
        str(tmp_path / "payments.token"),
        "--secret-file",
        str(tmp_path / "secret"),
        "--state-file",
        str(tmp_path / "payments.sqlite3"),
        "--engine-tls-ca",
        str(certs["ca"]),
        "--engine-tls-cert",
        str(certs["client"]),
        "--engine-tls-key",
        str(certs["client_key"]),
    ]
    process = None
    try:
        process, address = start_announcing(command, tmp_path / "adapter.log", env=_environment())
        with httpx.Client(base_url=f"http://{address}", timeout=30) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        if process is not None:
            assert stop_process(process) == 0
        assert stop_server(server) == 0
