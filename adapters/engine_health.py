"""Can this adapter reach the engine? The answer behind every adapter's `/healthz`.

The engine's standard gRPC health service is asked about the whole server (`""`, which the
engine takes down while its store is unreachable) over the adapter's own channel, so the
check covers what a wallet call needs: the network path, TLS and the engine itself. Bounded
both ways: a check gets `limits.engine_health_timeout_ms`, and its result is reused for
`limits.engine_health_cache_ms`, with one check at a time, so a storm of probes costs the
engine at most one check per interval.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters import limits

_log = structlog.get_logger("adapters.health")
WHOLE_SERVER = ""  # the health name the engine takes down with its store


@dataclass(frozen=True)
class EngineStatus:
    """What the last check found: SERVING, another health status, or UNREACHABLE."""

    status: str
    reason: str | None = None

    @property
    def serving(self) -> bool:
        return self.status == "SERVING"

    def document(self, engine: str) -> dict[str, str]:
        """The JSON body of `/healthz`."""
        body = {
            "status": "ok" if self.serving else "unavailable",
            "engine": engine,
            "engine_status": self.status,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


class EngineHealth:
    """Checks the engine's health over a channel, at most once per cache interval.

    Args:
        channel: the adapter's channel to the engine (its client's, so TLS is the same).
        metadata: call metadata (the client's bearer token).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        metadata: tuple,
        *,
        timeout_s: float = limits.engine_health_timeout_ms / 1000,
        cache_s: float = limits.engine_health_cache_ms / 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert 0 < timeout_s <= cache_s, (timeout_s, cache_s)
        self._stub = health_pb2_grpc.HealthStub(channel)
        self._metadata = metadata
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: EngineStatus | None = None
        self._checked_at = 0.0

    def status(self) -> EngineStatus:
        """The engine's status, checked now unless a check within the interval is known."""
        with self._lock:  # a probe arriving during a check waits for its answer
            if self._last is None or self._clock() - self._checked_at >= self._cache_s:
                self._last = self._check()
                self._checked_at = self._clock()
            return self._last

    def _check(self) -> EngineStatus:
        request = health_pb2.HealthCheckRequest(service=WHOLE_SERVER)
        try:
            reply = self._stub.Check(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            name = code.name if code is not None else type(error).__name__
            details = error.details() if hasattr(error, "details") else None
            return EngineStatus("UNREACHABLE", f"{name}: {details or 'no details'}")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        reason = None if status == "SERVING" else f"the engine reports {status}"
        return EngineStatus(status, reason)


def warn_unless_serving(health: EngineHealth, engine: str) -> None:
    """At start-up: an engine that is not there yet is logged, not fatal (docs/decisions.md)."""
    status = health.status()
    if not status.serving:
        _log.warning(
            "engine_not_serving_at_startup",
            engine=engine,
            engine_status=status.status,
            reason=status.reason,
        )
