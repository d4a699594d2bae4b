"""Telemetry at the edge: one canonical log line per call, a span per call, group sizes."""

import asyncio
import sys

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from ledger.api.telemetry import Telemetry
from ledger.core.errors import InvalidArgument


def _traced() -> tuple[Telemetry, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    telemetry = Telemetry("none", extra_span_processors=[SimpleSpanProcessor(spans)])
    return telemetry, spans


def test_each_call_leaves_one_canonical_line_and_one_span():
    """A call logs method, status, outcome, latency and request id once, inside a span."""
    telemetry, spans = _traced()

    async def call():
        with telemetry.call("Bet", [("x-request-id", "req-42")]) as record:
            record.outcome = "INSUFFICIENT_FUNDS"
        return record

    with capture_logs() as logs:
        record = asyncio.run(call())
    assert record.request_id == "req-42"  # the caller's id, bound to the log context
    [line] = [log for log in logs if log["event"] == "call"]
    assert line["method"] == "Bet" and line["status"] == "OK"
    assert line["outcome"] == "INSUFFICIENT_FUNDS" and line["latency_ms"] >= 0
    [span] = spans.get_finished_spans()
    assert span.name == "ledger.v1.LedgerService/Bet"
    assert span.attributes["ledger.outcome"] == "INSUFFICIENT_FUNDS"


def test_failed_calls_are_logged_with_their_status_and_no_outcome():
    """A refused call's line carries its gRPC status, and no business outcome."""
    telemetry, _ = _traced()

    async def call():
        with telemetry.call("Deposit", []) as record:
            record.status = "INVALID_ARGUMENT"
        return record

    with capture_logs() as logs:
        record = asyncio.run(call())
    [line] = [log for log in logs if log["event"] == "call"]
    assert line["status"] == "INVALID_ARGUMENT" and line["outcome"] is None
    assert len(record.request_id) == 32  # none sent: one is generated for the call


def test_unknown_exporter_is_refused_naming_the_setting():
    """Only none, console and otlp exporters exist."""
    with pytest.raises(InvalidArgument, match="otel_exporter"):
        Telemetry("zipkin")


def test_projection_lag_and_group_sizes_are_metrics():
    """The follower's lag is a gauge and group commit sizes a histogram, exported by the SDK."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    telemetry = Telemetry("none", extra_readers=[reader])
    telemetry.record_lag(7)
    telemetry.record_group(12)
    metrics = {
        metric.name: metric.data.data_points
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert [point.value for point in metrics["ledger.projection.lag"]] == [7]
    assert [point.sum for point in metrics["ledger.group_commit.size"]] == [12]


def test_without_an_exporter_spans_are_not_recorded_but_the_line_is_logged():
    """With `none` and nothing attached, spans are no-ops; the canonical log line remains."""
    telemetry = Telemetry("none")

    async def call():
        with telemetry.call("Win", []) as record:
            record.outcome = "OK"

    with capture_logs() as logs:
        asyncio.run(call())
    assert not telemetry.tracer.start_span("probe").is_recording()
    assert [log["method"] for log in logs if log["event"] == "call"] == ["Win"]
    telemetry.record_group(3)  # a no-op meter accepts measurements and drops them
    telemetry.shutdown()


def test_latency_and_group_sizes_use_their_explicit_buckets():
    """The views give the latency histogram millisecond buckets and group sizes powers of two
    up to the batch bound, instead of the SDK's default boundaries."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from ledger.api.telemetry import GROUP_SIZE_BUCKETS, LATENCY_BUCKETS_MS

    reader = InMemoryMetricReader()
    telemetry = Telemetry("none", extra_readers=[reader])

    async def call():
        with telemetry.call("Bet", []) as record:
            record.outcome = "OK"

    asyncio.run(call())
    telemetry.record_group(3)
    points = {
        metric.name: metric.data.data_points[0]
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert tuple(points["ledger.call.duration"].explicit_bounds) == LATENCY_BUCKETS_MS
    assert tuple(points["ledger.group_commit.size"].explicit_bounds) == GROUP_SIZE_BUCKETS
    assert points["ledger.group_commit.size"].bucket_counts[2] == 1  # 3 is in (2, 4]


def _without_the_otlp_extra(monkeypatch) -> None:
    """Makes the OTLP exporter's import fail, as it does where the extra is not installed."""
    for module in (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    ):
        monkeypatch.setitem(sys.modules, module, None)


def test_otlp_without_its_extra_names_the_extra_to_install(monkeypatch):
    """Selecting otlp without the exporter installed is refused naming the pip command."""
    _without_the_otlp_extra(monkeypatch)
    with pytest.raises(InvalidArgument, match=r"pip install 'casino-ledger\[otlp\]'"):
        Telemetry("otlp")


def test_serve_with_otlp_but_no_extra_is_a_usage_error_without_traceback(monkeypatch, tmp_path):
    """`ledger serve --otel-exporter otlp` without the extra exits 2 naming the option and
    the extra, before it opens a store."""
    from click.testing import CliRunner

    from ledger.cli.main import main

    _without_the_otlp_extra(monkeypatch)
    store = tmp_path / "ledger.sqlite3"
    arguments = [
        "serve",
        "--otel-exporter",
        "otlp",
        "--database-url",
        f"sqlite:///{store}",
        "--state-dir",
        str(tmp_path),
    ]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2, result.output
    assert "'--otel-exporter'" in result.output
    assert "pip install 'casino-ledger[otlp]'" in result.output
    assert "Traceback" not in result.output and not store.exists()


def test_with_the_extra_installed_otlp_builds_its_exporters():
    """Where `casino-ledger[otlp]` is installed, otlp gives the OTLP span and metric exporters."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
    from ledger.api.telemetry import _exporters

    spans, metrics = _exporters("otlp")
    assert type(spans).__name__ == "OTLPSpanExporter"
    assert type(metrics).__name__ == "OTLPMetricExporter"
    spans.shutdown()
    metrics.shutdown()


def _points(reader) -> dict:
    return {
        metric.name: metric.data.data_points
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def test_calls_are_counted_per_method_and_status_across_many_calls():
    """Reused attribute sets still count each (method, status) and outcome apart."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    telemetry = Telemetry("none", extra_readers=[reader])

    async def calls():
        for method, status, outcome in [("Bet", "OK", "OK")] * 3 + [
            ("Bet", "INVALID_ARGUMENT", None),
            ("Win", "OK", "DUPLICATE"),
        ]:
            with telemetry.call(method, []) as record:
                record.status, record.outcome = status, outcome

    asyncio.run(calls())
    points = _points(reader)
    counted = {tuple(sorted(p.attributes.items())): p.value for p in points["ledger.calls"]}
    assert counted == {
        (("method", "Bet"), ("status", "OK")): 3,
        (("method", "Bet"), ("status", "INVALID_ARGUMENT")): 1,
        (("method", "Win"), ("status", "OK")): 1,
    }
    outcomes = {tuple(sorted(p.attributes.items())): p.value for p in points["ledger.outcomes"]}
    assert outcomes == {
        (("method", "Bet"), ("outcome", "OK")): 3,
        (("method", "Win"), ("outcome", "DUPLICATE")): 1,
    }
    assert sum(p.count for p in points["ledger.call.duration"]) == 5


def test_the_request_id_is_bound_only_while_the_call_runs():
    """Lines logged inside a call carry its request id; after it, the id is gone."""
    from structlog.contextvars import get_contextvars

    telemetry = Telemetry("none")

    async def call():
        with telemetry.call("Bet", [("x-request-id", "req-7")]):
            inside = dict(get_contextvars())
        return inside, dict(get_contextvars())

    inside, after = asyncio.run(call())
    assert inside == {"request_id": "req-7"}
    assert "request_id" not in after


def test_a_call_that_raises_is_logged_measured_and_its_span_records_the_error():
    """An exception escaping the handler still leaves the line, and ends the span in error."""
    from opentelemetry.trace import StatusCode

    telemetry, spans = _traced()

    async def call():
        with telemetry.call("Bet", []) as record:
            record.status = "INTERNAL"
            raise RuntimeError("boom")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="boom"):
        asyncio.run(call())
    [line] = [log for log in logs if log["event"] == "call"]
    assert line["status"] == "INTERNAL" and line["latency_ms"] >= 0
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["rpc.grpc.status"] == "INTERNAL"
