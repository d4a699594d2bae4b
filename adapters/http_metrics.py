"""An adapter's metrics: OpenTelemetry instruments read into Prometheus text, as the engine's
`--metrics-listen` does (`ledger/api/metrics_endpoint.py`, docs/decisions.md): the SDK's
`PrometheusMetricReader` on a `CollectorRegistry` of the adapter's own, and
prometheus-client's exposition, so names, escaping and `le` series are the libraries'.
Adapters may not import the engine's modules (tests/unit/test_layering.py), so the pattern,
not the module, is shared; the engine's endpoint is a server of its own, while an HTTP
adapter serves `/metrics` on its own port.

Requests are counted by route template (`/transaction/bet`, never a raw path, so a scan of
made-up paths adds one series, `unmatched`), method and status, and timed into a histogram.
"""

import time

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

REQUESTS_METRIC = "adapter.http.requests"
LATENCY_METRIC = "adapter.http.duration"
UNMATCHED_ROUTE = "unmatched"
# Milliseconds: a refused signature takes a fraction of one, a wallet call one engine round
# trip (a few), a call through the client's retries against a lost engine up to seconds.
LATENCY_BUCKETS_MS = (
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
    30_000,
)
assert list(LATENCY_BUCKETS_MS) == sorted(set(LATENCY_BUCKETS_MS))
CONTENT_TYPE = CONTENT_TYPE_LATEST


class HttpMetrics:
    """The adapter's meter provider, its Prometheus registry and the request instruments."""

    def __init__(self, service_name: str) -> None:
        self.registry = CollectorRegistry()
        view = View(
            instrument_name=LATENCY_METRIC,
            aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS),
        )
        self.meter_provider = MeterProvider(
            resource=Resource.create({"service.name": service_name}),
            metric_readers=[PrometheusMetricReader(registry=self.registry)],
            views=[view],
        )
        self.meter = self.meter_provider.get_meter("adapters")
        self.requests = self.meter.create_counter(
            REQUESTS_METRIC, unit="{request}", description="HTTP requests by route and status"
        )
        self.latency = self.meter.create_histogram(
            LATENCY_METRIC, unit="ms", description="time in the adapter per HTTP request"
        )

    def record(self, route: str, method: str, status: int, latency_ms: float) -> None:
        attributes = {"route": route, "method": method, "status": str(status)}
        self.requests.add(1, attributes)
        self.latency.record(latency_ms, attributes)

    def exposition(self) -> bytes:
        """Every instrument's current values as Prometheus text."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.meter_provider.shutdown()


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request, refused ones (413) included."""

    def __init__(self, app, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before it starts a response

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            self.metrics.record(route_of(scope), scope["method"], status, latency_ms)


def route_of(scope) -> str:
    """The route template the router matched, or the path if the app has a route of that
    path (a body refused before routing), else `unmatched`."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    path = scope.get("path", "")
    known = {getattr(each, "path", None) for each in getattr(scope.get("app"), "routes", ())}
    return path if path in known else UNMATCHED_ROUTE
