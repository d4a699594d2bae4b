"""Telemetry at the edge: one canonical log line per call, a span per call, group sizes."""

import asyncio

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
