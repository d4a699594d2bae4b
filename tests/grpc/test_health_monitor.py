"""The health monitor in-process: the store probe's answers set the health service both ways,
each change of the store's state is logged once, a hanging probe counts as a failure and is
not started twice, components report on their own, and graceful shutdown wins."""

import asyncio
import threading

import psycopg
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from structlog.testing import capture_logs

from ledger.api.health import NOT_SERVING, SERVING, HealthMonitor
from ledger.store.probe import StoreProbe

SERVICE = "ledger.v1.LedgerService"
COMPONENT = f"{SERVICE}/projections"
TIMEOUT_S = 0.2


class ScriptedProbe(StoreProbe):
    """A probe whose answers the test decides: it fails while `down`, and each check waits
    for `answering` (cleared: the store hangs)."""

    def __init__(self) -> None:
        self.down = False
        self.answering = threading.Event()
        self.answering.set()
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        assert self.answering.wait(timeout=10)
        if self.down:
            raise psycopg.OperationalError("connection refused")

    def close(self) -> None:
        self.answering.set()


async def _statuses(health: HealthServicer) -> dict[str, int]:
    names = ("", SERVICE, COMPONENT)
    requests = [health_pb2.HealthCheckRequest(service=name) for name in names]
    return {
        name: (await health.Check(r, None)).status for name, r in zip(names, requests, strict=True)
    }


def _monitor(health: HealthServicer, probe: StoreProbe, component: list[bool]) -> HealthMonitor:
    components = {COMPONENT: lambda: component[0]}
    return HealthMonitor(health, probe, ("", SERVICE), components, timeout_s=TIMEOUT_S)


def test_the_probe_sets_health_both_ways_and_each_change_is_logged_once():
    """A failing probe turns the server NOT_SERVING, a succeeding one SERVING again; the
    component follows its own callable; two log lines for one outage of several probes."""
    health, probe, component = HealthServicer(), ScriptedProbe(), [True]
    monitor = _monitor(health, probe, component)

    async def scenario() -> list[dict[str, int]]:
        seen = []
        for down, healthy in ((False, True), (True, True), (True, False), (False, True)):
            probe.down, component[0] = down, healthy
            await monitor.tick()
            seen.append(await _statuses(health))
        await monitor.stop()
        return seen

    with capture_logs() as logs:
        seen = asyncio.run(scenario())
    assert [s[SERVICE] for s in seen] == [SERVING, NOT_SERVING, NOT_SERVING, SERVING]
    assert [s[""] for s in seen] == [SERVING, NOT_SERVING, NOT_SERVING, SERVING]
    assert [s[COMPONENT] for s in seen] == [SERVING, SERVING, NOT_SERVING, SERVING]
    assert [line["event"] for line in logs] == ["store unreachable", "store reachable again"]
    assert logs[0]["error"] == "connection refused"


def test_a_hanging_probe_is_an_outage_and_is_not_started_twice():
    """A probe that does not answer within the timeout counts as a failure; the next tick
    waits for the same probe instead of starting another beside it."""
    health, probe = HealthServicer(), ScriptedProbe()
    monitor = _monitor(health, probe, [True])

    async def scenario() -> None:
        probe.answering.clear()
        await monitor.tick()
        await monitor.tick()
        assert not monitor.reachable and probe.checks == 1
        assert (await _statuses(health))[SERVICE] == NOT_SERVING
        probe.answering.set()
        await monitor.tick()
        assert monitor.reachable and (await _statuses(health))[SERVICE] == SERVING
        await monitor.stop()

    asyncio.run(scenario())


def test_graceful_shutdown_wins_over_later_probes():
    """Once the server drains, a probe that succeeds does not make it SERVING again."""
    health, probe = HealthServicer(), ScriptedProbe()
    monitor = _monitor(health, probe, [True])

    async def scenario() -> dict[str, int]:
        await monitor.start()
        await health.enter_graceful_shutdown()
        await monitor.tick()
        await monitor.stop()
        return await _statuses(health)

    assert set(asyncio.run(scenario()).values()) == {NOT_SERVING}
