"""`ledger serve --metrics-listen` serves the OpenTelemetry metrics as Prometheus text: calls,
outcomes, a latency histogram with millisecond buckets, group-commit sizes and projection
lag, counted exactly; a port it cannot bind is a usage error naming the option."""

import socket
import time

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from ledger.api.metrics_endpoint import parse_listen
from ledger.api.telemetry import LATENCY_BUCKETS_MS
from ledger.cli.main import main
from ledger.core.errors import InvalidArgument
from tests.grpc.conftest import RunningServer, start_server, stop_server

LAG_TIMEOUT_S = 20


def _metrics_url(server: RunningServer) -> str:
    """The URL the server prints right after `listening on` (already in the pipe's buffer,
    where a select on the descriptor would not see it; an exited server reads as "")."""
    line = server.process.stdout.readline()
    assert line.startswith("metrics on http://127.0.0.1:"), line
    return line.removeprefix("metrics on ").strip()


def _samples(url: str) -> dict[tuple, float]:
    """Every sample of a scrape, keyed by name and labels (the scope labels left out)."""
    text = httpx.get(url, timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope")}
            samples[(sample.name, *sorted(labels.items()))] = sample.value
    return samples


def _play(server: RunningServer) -> None:
    """Three deposits, one bet refused for funds, one balance read."""
    with server.client("payments") as payments:
        for n in range(3):
            payments.deposit(
                idempotency_key=f"m-d{n}",
                player_id="m1",
                currency="EUR",
                amount="10",
                rail="psp",
                rail_id="adyen",
            )
    with server.client("hub88") as hub88:
        refused = hub88.bet(
            idempotency_key="m-b1",
            provider="hub88",
            player_id="m1",
            currency="EUR",
            amount="1000",
            round_id="r1",
        )
        assert refused.outcome == "INSUFFICIENT_FUNDS"
    with server.client("backoffice") as backoffice:
        backoffice.get_balance(player_id="m1", currency="EUR")


def test_a_real_server_serves_its_calls_outcomes_latency_groups_and_lag(tmp_path):
    """A scrape after known calls counts each by method, status and outcome, puts them in
    millisecond buckets, sums the group commits to the commands, and shows no lag."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    server = start_server(url, tmp_path, "--metrics-listen", "127.0.0.1:0")
    try:
        metrics_url = _metrics_url(server)
        _play(server)
        deadline = time.monotonic() + LAG_TIMEOUT_S
        while (samples := _samples(metrics_url)).get(("ledger_projection_lag",)) != 0:
            assert time.monotonic() < deadline, "the lag never reached zero"
            time.sleep(0.2)
    finally:
        assert stop_server(server) == 0
    deposit_ok = (("method", "Deposit"), ("status", "OK"))
    bet_ok = (("method", "Bet"), ("status", "OK"))
    assert samples[("ledger_calls_total", *deposit_ok)] == 3
    assert samples[("ledger_calls_total", *bet_ok)] == 1
    assert samples[("ledger_calls_total", ("method", "GetBalance"), ("status", "OK"))] == 1
    assert samples[("ledger_outcomes_total", ("method", "Deposit"), ("outcome", "OK"))] == 3
    refused = ("ledger_outcomes_total", ("method", "Bet"), ("outcome", "INSUFFICIENT_FUNDS"))
    assert samples[refused] == 1
    latency = "ledger_call_duration_milliseconds"
    assert samples[(f"{latency}_count", *deposit_ok)] == 3
    buckets = [
        float(labels[0][1])
        for (name, *labels) in samples
        if name == f"{latency}_bucket" and ("method", "Deposit") in labels
    ]
    assert sorted(buckets)[:-1] == [float(bound) for bound in LATENCY_BUCKETS_MS]
    assert samples[("ledger_group_commit_size_sum",)] == 4  # the four commands, grouped


def test_a_port_in_use_or_a_malformed_address_names_the_option(tmp_path):
    """Binding a taken port, or an address without a port, is a usage error naming
    --metrics-listen, without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for listen, said in ((f"127.0.0.1:{port}", "cannot listen on"), ("nowhere", "HOST:PORT")):
            result = CliRunner().invoke(
                main,
                [
                    "serve",
                    "--database-url",
                    f"sqlite:///{tmp_path}/ledger.sqlite3",
                    "--listen",
                    "127.0.0.1:0",
                    "--state-dir",
                    str(tmp_path / "state"),
                    "--metrics-listen",
                    listen,
                ],
            )
            assert result.exit_code == 2, result.output
            assert "'--metrics-listen'" in result.output and said in result.output
            assert "Traceback" not in result.output


def test_listen_addresses_parse_with_ipv6_brackets_and_refuse_bad_ports():
    """HOST:PORT splits at the last colon, brackets come off an IPv6 host, ports stop at 65535."""
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for listen in ("9464", ":9464", "host:", "host:65536", "host:-1"):
        with pytest.raises(InvalidArgument, match="metrics_listen"):
            parse_listen(listen)
