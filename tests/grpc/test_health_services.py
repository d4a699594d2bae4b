"""Named health services over real gRPC: the store's name follows its probe on Watch, and a
server signing checkpoints reports `.../checkpoints` NOT_SERVING while one is overdue and
SERVING again once one goes through."""

import asyncio

import grpc
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from ledger.api.checkpointer import is_overdue
from ledger.api.health import NOT_SERVING, SERVING, HealthMonitor
from ledger.cli.main import main
from ledger.core import limits
from tests.grpc.conftest import log_lines, start_server, stop_server
from tests.grpc.test_health_monitor import ScriptedProbe

SERVICE = "ledger.v1.LedgerService"
STORE = f"{SERVICE}/store"
CHECKPOINTS = f"{SERVICE}/checkpoints"
WATCH_TIMEOUT_S = 30


def _watched(responses, count: int) -> list[int]:
    """The first `count` distinct statuses a Watch stream reports, in order."""
    seen: list[int] = []
    for response in responses:
        if not seen or seen[-1] != response.status:
            seen.append(response.status)
        if len(seen) == count:
            responses.cancel()
            return seen
    return seen


def test_the_store_name_follows_the_probe_on_a_real_watch():
    """A Watch on `.../store` over a real channel sees SERVING, NOT_SERVING while the probe
    fails, then SERVING again; the whole server's "" says the same."""
    probe = ScriptedProbe()

    async def scenario() -> tuple[list[int], int]:
        health, server = HealthServicer(), grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        port = server.add_insecure_port("127.0.0.1:0")
        monitor = HealthMonitor(health, probe, ("", SERVICE, STORE), {}, timeout_s=0.2)
        await monitor.tick()
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=STORE))
            seen = [(await watch.read()).status]
            for down in (True, False):
                probe.down = down
                await monitor.tick()
                seen.append((await watch.read()).status)
            probe.down = True
            await monitor.tick()
            whole = await stub.Check(health_pb2.HealthCheckRequest(service=""))
            watch.cancel()
        await monitor.stop()
        await server.stop(None)
        return seen, whole.status

    seen, whole = asyncio.run(scenario())
    assert seen == [SERVING, NOT_SERVING, SERVING]
    assert whole == NOT_SERVING


def test_a_checkpoint_is_overdue_only_past_the_bound_of_limits():
    """Late by exactly the bound's intervals is still healthy; any later is overdue."""
    interval_s, bound = 10.0, limits.checkpoint_overdue_intervals
    due_s = 100.0 + interval_s
    assert not is_overdue(100.0, due_s + bound * interval_s, interval_s)
    assert is_overdue(100.0, due_s + bound * interval_s + 0.001, interval_s)
    assert not is_overdue(100.0, 100.0, interval_s)


@pytest.mark.slow
def test_overdue_checkpoints_turn_their_health_not_serving_and_back(tmp_path):
    """A kept checkpoint that does not verify fails every interval: `.../checkpoints` turns
    NOT_SERVING while the store's names stay SERVING; removing it mends the next interval."""
    key, kept = tmp_path / "signing.pem", tmp_path / "kept"
    kept.mkdir()
    assert CliRunner().invoke(main, ["checkpoint-key", str(key)]).exit_code == 0
    broken = kept / "checkpoint-99999999999999999999.json"
    broken.write_text("not a checkpoint\n")
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    options = (
        "--checkpoint-key",
        str(key),
        "--checkpoint-interval-s",
        "1",
        "--checkpoint-dir",
        str(kept),
    )
    server = start_server(url, tmp_path, *options)
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(
                health_pb2.HealthCheckRequest(service=CHECKPOINTS), timeout=WATCH_TIMEOUT_S
            )
            assert _watched(watch, 2) == [SERVING, NOT_SERVING]
            for name in ("", SERVICE, STORE):
                assert stub.Check(health_pb2.HealthCheckRequest(service=name)).status == SERVING
            watch = stub.Watch(
                health_pb2.HealthCheckRequest(service=CHECKPOINTS), timeout=WATCH_TIMEOUT_S
            )
            broken.unlink()  # after the watch started, so it sees the status change
            assert _watched(watch, 2) == [NOT_SERVING, SERVING]
    finally:
        assert stop_server(server) == 0
    events = [line["event"] for line in log_lines(server)]
    assert events.count("checkpoint failed") >= limits.checkpoint_overdue_intervals + 1
