"""Health that tells the truth about the store.

The standard gRPC health service reports NOT_SERVING for the whole server (""), for
`ledger.v1.LedgerService` and for the store's own name, `ledger.v1.LedgerService/store`,
while a probe of the event store fails (`ledger.store.probe`), and SERVING again once the store
answers. Other components get names of their own, each following a callable:
`ledger.v1.LedgerService/projections` is SERVING while the projection follower keeps the
views current and NOT_SERVING while it waits out an outage or after a bug stopped it;
`ledger.v1.LedgerService/checkpoints` (only on a server signing checkpoints) is NOT_SERVING
while a checkpoint is overdue. A failing component does not make the whole server
unhealthy, since commands and wallet reads work without it.

The probe runs on a thread of its own every `limits.health_probe_interval_ms`. An answer
later than `limits.health_probe_timeout_ms` counts as none, and a probe still hanging is not
started again beside it. A status is set only when it changes, and the store's changes of
state are logged once each. Graceful shutdown wins: the health servicer ignores every status
set after `enter_graceful_shutdown`.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from ledger.core import limits
from ledger.event_log import StoreProbe

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_log = structlog.get_logger("ledger.api")


class HealthMonitor:
    """Probes the store on an interval and keeps the health service's statuses true.

    Args:
        services: names that are SERVING exactly while the store answers.
        components: further names, each SERVING while its callable says it is healthy.
        interval_s, timeout_s: the probe's period and time to answer (limits.py's bounds).
    """

    def __init__(
        self,
        health: HealthServicer,
        probe: StoreProbe,
        services: tuple[str, ...],
        components: dict[str, Callable[[], bool]],
        *,
        interval_s: float = limits.health_probe_interval_ms / 1000,
        timeout_s: float = limits.health_probe_timeout_ms / 1000,
    ) -> None:
        assert interval_s > 0 and 0 < timeout_s <= limits.health_probe_timeout_ms / 1000
        self.health = health
        self.probe = probe
        self.services = services
        self.components = components
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.reachable = True  # what the last probe found; read by the query paths
        self._down_since = 0.0
        self._published: dict[str, int] = {}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-health")
        self._pending: Future | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Publishes the first statuses, then keeps them current in the background."""
        await self.tick()
        self._task = asyncio.create_task(self._every_interval())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Closed on the probe's own thread, after any check still running there.
        self._executor.submit(self.probe.close)
        self._executor.shutdown(wait=False)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> None:
        """One probe of the store, then every status it and the components imply."""
        self._note(await self._probe())
        statuses = dict.fromkeys(self.services, self.reachable)
        statuses.update((name, healthy()) for name, healthy in self.components.items())
        for service, serving in statuses.items():
            await self._publish(service, SERVING if serving else NOT_SERVING)

    async def _probe(self) -> BaseException | None:
        """None if the store answered in time, else what went wrong."""
        if self._pending is None or self._pending.done():
            self._pending = self._executor.submit(self.probe.check)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._pending), self.timeout_s)
        except Exception as error:  # the probe's own failure, or TimeoutError
            return error
        return None

    def _note(self, error: BaseException | None) -> None:
        """Logs the store's changes of state, once each."""
        if (error is None) == self.reachable:
            return
        self.reachable = error is None
        if error is None:
            down_s = time.monotonic() - self._down_since
            _log.info("store reachable again", outage_s=round(down_s, 3))
            return
        self._down_since = time.monotonic()
        _log.warning("store unreachable", error=str(error), error_type=type(error).__name__)

    async def _publish(self, service: str, status: int) -> None:
        if self._published.get(service) != status:
            self._published[service] = status
            await self.health.set(service, status)
