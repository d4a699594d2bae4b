"""The operator's endpoints every adapter serves: `/healthz` and `/metrics`.

Neither is authenticated nor signed: they are routes of their own beside the signed wallet
and callback routes (whose signature checks are untouched), meant for a load balancer's probe
and a Prometheus scrape on a private network. `/healthz` is 200 with a JSON body while the
engine answers SERVING and 503 with the reason otherwise (`adapters.engine_health`);
`/metrics` is Prometheus text (`adapters.http_metrics`).
"""

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from adapters.engine_health import EngineHealth
from adapters.http_metrics import CONTENT_TYPE, HttpMetrics, RequestMetrics

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def add_operator_endpoints(
    app: FastAPI, health: EngineHealth, metrics: HttpMetrics, engine: str
) -> None:
    """Adds the two routes, unsigned, and counts every request of the app (call last: the
    counting middleware must be outermost to see requests refused before routing)."""
    router = APIRouter(route_class=APIRoute)

    @router.get(HEALTH_PATH, include_in_schema=False)
    def healthz() -> JSONResponse:
        """200 while the engine answers SERVING, 503 with the reason otherwise."""
        status = health.status()
        return JSONResponse(status.document(engine), status_code=200 if status.serving else 503)

    @router.get(METRICS_PATH, include_in_schema=False)
    def prometheus_metrics() -> Response:
        """The adapter's metrics as Prometheus text."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    app.include_router(router)
    app.add_middleware(RequestMetrics, metrics=metrics)


def operator_app(health: EngineHealth, metrics: HttpMetrics, engine: str) -> FastAPI:
    """An app of the two endpoints alone, for an adapter with no HTTP face of its own."""
    app = FastAPI(title="Casino ledger adapter: operator endpoints", openapi_url=None)
    add_operator_endpoints(app, health, metrics, engine)
    return app
