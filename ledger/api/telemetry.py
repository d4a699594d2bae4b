"""Logs, traces and metrics at the edge: one canonical JSON log line per call (method,
outcome, latency, request id), an OpenTelemetry span per call, and metrics for calls,
outcomes, latency, group sizes and projection lag. The exporter is chosen by configuration:
`none`, `console` (standard output of the SDK's console exporters) or `otlp` (the extra
`casino-ledger[otlp]`, and the standard OTEL_EXPORTER_OTLP_* environment variables); a
Prometheus endpoint (`ledger.api.metrics_endpoint`) attaches as one more metric reader.
With `none` and nothing else attached, spans and metrics go to the API's no-op tracer and
meter: nobody could read them, and the SDK's bookkeeping cost about a tenth of the event
loop's time per unary call. The log line is written either way.

Histograms have explicit buckets (OpenTelemetry views): the SDK's default boundaries (0, 5,
10, 25, ... 10000) would put nearly every call of a millisecond-level server in its first
two buckets, and group sizes run from 1 to `limits.batch_size_max`.
"""

import random
import time

import structlog
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import INVALID_SPAN, NoOpTracerProvider

from ledger.core import limits
from ledger.core.errors import InvalidArgument

EXPORTERS = ("none", "console", "otlp")
OTLP_EXTRA_INSTALL = "pip install 'casino-ledger[otlp]'"
METRIC_EXPORT_INTERVAL_MS = 10_000
REQUEST_ID_LENGTH_MAX = 64
LATENCY_METRIC = "ledger.call.duration"
GROUP_SIZE_METRIC = "ledger.group_commit.size"
# Milliseconds: a cached read takes a fraction of one, a group commit a few, a call stuck
# behind a store outage up to the probe's timeout and beyond.
LATENCY_BUCKETS_MS = (
    0.25,
    0.5,
    1,
    2,
    3,
    5,
    7.5,
    10,
    15,
    25,
    50,
    75,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10_000,
)
GROUP_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, limits.batch_size_max)
assert list(LATENCY_BUCKETS_MS) == sorted(set(LATENCY_BUCKETS_MS))
assert list(GROUP_SIZE_BUCKETS) == sorted(set(GROUP_SIZE_BUCKETS))
VIEWS = (
    View(
        instrument_name=LATENCY_METRIC,
        aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS),
    ),
    View(
        instrument_name=GROUP_SIZE_METRIC,
        aggregation=ExplicitBucketHistogramAggregation(GROUP_SIZE_BUCKETS),
    ),
)


class CallRecord:
    """What a handler tells the canonical log line about its call."""

    __slots__ = ("fields", "method", "outcome", "request_id", "status")

    def __init__(self, method: str, request_id: str) -> None:
        self.method = method
        self.request_id = request_id
        self.outcome: str | None = None  # a command's business outcome, when it has one
        self.status = "OK"
        self.fields: dict[str, object] = {}


class _CallScope:
    """The span, the log context and the clock of one call, as a plain context manager: the
    generator-based one it replaces cost a few microseconds per call more, for nothing."""

    __slots__ = ("_record", "_span", "_span_scope", "_started", "_telemetry", "_tokens")

    def __init__(self, telemetry: "Telemetry", record: CallRecord) -> None:
        self._telemetry = telemetry
        self._record = record

    def __enter__(self) -> CallRecord:
        record, telemetry = self._record, self._telemetry
        self._started = time.perf_counter()
        # bind and reset by token: what `bound_contextvars` does, without reading the whole
        # log context twice per call.
        self._tokens = structlog.contextvars.bind_contextvars(request_id=record.request_id)
        self._span_scope = None
        self._span = INVALID_SPAN
        if telemetry.tracing:
            name = f"ledger.v1.LedgerService/{record.method}"
            self._span_scope = telemetry.tracer.start_as_current_span(name)
            self._span = self._span_scope.__enter__()
        return record

    def __exit__(self, exc_type, exc, traceback) -> None:
        record = self._record
        try:
            try:
                latency_ms = (time.perf_counter() - self._started) * 1000
                if self._span_scope is not None:
                    if record.outcome is not None:
                        self._span.set_attribute("ledger.outcome", record.outcome)
                    self._span.set_attribute("rpc.grpc.status", record.status)
                self._telemetry._measure(record, latency_ms)
            finally:
                if self._span_scope is not None:
                    self._span_scope.__exit__(exc_type, exc, traceback)
        finally:
            structlog.contextvars.reset_contextvars(**self._tokens)


class Telemetry:
    def __init__(
        self,
        exporter: str = "none",
        service_name: str = "casino-ledger",
        extra_readers=(),
        extra_span_processors=(),
    ) -> None:
        if exporter not in EXPORTERS:
            raise InvalidArgument("otel_exporter", f"must be one of {', '.join(EXPORTERS)}")
        readers, processors = list(extra_readers), list(extra_span_processors)
        if exporter != "none":
            span_exporter, metric_exporter = _exporters(exporter)
            processors.append(BatchSpanProcessor(span_exporter))
            readers.append(
                PeriodicExportingMetricReader(
                    metric_exporter, export_interval_millis=METRIC_EXPORT_INTERVAL_MS
                )
            )
        resource = Resource.create({"service.name": service_name})
        self.tracer_provider = _tracer_provider(resource, processors)
        # No processor, no reader of spans: not even the no-op tracer's context switching.
        self.tracing = bool(processors)
        self.meter_provider = (
            MeterProvider(resource=resource, metric_readers=readers, views=VIEWS)
            if readers
            else NoOpMeterProvider()
        )
        self.tracer = self.tracer_provider.get_tracer("ledger.api")
        meter = self.meter_provider.get_meter("ledger.api")
        self.calls = meter.create_counter("ledger.calls", description="gRPC calls by status")
        self.outcomes = meter.create_counter("ledger.outcomes", description="command outcomes")
        self.latency = meter.create_histogram(
            LATENCY_METRIC, unit="ms", description="time in the server per call"
        )
        self.group_sizes = meter.create_histogram(
            GROUP_SIZE_METRIC, unit="{command}", description="commands per group commit"
        )
        self.projection_lag = meter.create_gauge(
            "ledger.projection.lag", unit="{event}", description="events not yet in the views"
        )
        self.log = structlog.get_logger("ledger.api")
        # One attribute set per (method, status) and (method, outcome), built once and never
        # mutated: both are small closed sets (the service's methods, gRPC's codes, the
        # outcomes and a batch's "N results"), so the cache stays small.
        self._attribute_sets: dict[tuple[str, str, str], dict[str, str]] = {}

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if hasattr(provider, "shutdown"):  # the no-op providers have nothing to flush
                provider.shutdown()

    def _attributes(self, kind: str, method: str, value: str) -> dict[str, str]:
        key = (kind, method, value)
        attributes = self._attribute_sets.get(key)
        if attributes is None:
            attributes = self._attribute_sets[key] = {"method": method, kind: value}
        return attributes

    def record_group(self, size: int) -> None:
        self.group_sizes.record(size)

    def record_lag(self, lag: int) -> None:
        self.projection_lag.set(lag)

    def call(self, method: str, metadata) -> _CallScope:
        """Spans, times and logs one call (`with telemetry.call(...) as record`); the handler
        fills in the record's outcome and status."""
        return _CallScope(self, CallRecord(method, _request_id(metadata)))

    def _measure(self, record: CallRecord, latency_ms: float) -> None:
        attributes = self._attributes("status", record.method, record.status)
        self.calls.add(1, attributes)
        if record.outcome is not None:
            self.outcomes.add(1, self._attributes("outcome", record.method, record.outcome))
        self.latency.record(latency_ms, attributes)
        self.log.info(
            "call",
            method=record.method,
            status=record.status,
            outcome=record.outcome,
            latency_ms=round(latency_ms, 3),
            **record.fields,
        )


def _tracer_provider(resource: Resource, processors: list):
    if not processors:
        return NoOpTracerProvider()
    provider = TracerProvider(resource=resource)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _request_id(metadata) -> str:
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and value:
            return value[:REQUEST_ID_LENGTH_MAX]
    # 128 random bits as 32 hex digits, like uuid4().hex but from the process's Mersenne
    # Twister (seeded from the OS, reseeded in a forked child) rather than a getrandom call
    # per call: an id names a call in the logs, it guards nothing.
    return f"{random.getrandbits(128):032x}"


def _exporters(exporter: str):
    if exporter == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    try:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError:
        reason = f"otlp needs the extra that installs its exporter: {OTLP_EXTRA_INSTALL}"
        raise InvalidArgument("otel_exporter", reason) from None
    return OTLPSpanExporter(), OTLPMetricExporter()
