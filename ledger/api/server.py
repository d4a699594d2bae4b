"""Composition of the gRPC server: the servicer, health (probed, see `ledger.api.health`),
reflection (v1 and v1alpha, `ledger.api.reflection`), the projection follower, message and
concurrency bounds, TLS or mutual TLS, the Prometheus endpoint when asked for
(`ledger.api.metrics_endpoint`), and a graceful drain on SIGTERM or SIGINT.
"""

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from ledger.api.auth import Authenticator
from ledger.api.checkpointer import Checkpointer
from ledger.api.group_commit import GroupCommitter
from ledger.api.handlers import add_service
from ledger.api.health import HealthMonitor
from ledger.api.metrics_endpoint import MetricsEndpoint
from ledger.api.reflection import enable_reflection
from ledger.api.servicer import LedgerServicer
from ledger.api.telemetry import Telemetry
from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.service.application import Ledger
from ledger.v1 import ledger_pb2
from projections.follower import ProjectionFollower
from projections.runner import ProjectionRunner
from projections.stores import ProjectionStore, open_projection_store

SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"]
SERVICE_NAME = SERVICE.full_name
# Health names of the components (docs/contract.md): the store, SERVING while its probe
# answers; the read models, while the follower keeps them current; the signed checkpoints
# (only with --checkpoint-key), while none is overdue past limits.checkpoint_overdue_intervals.
STORE_HEALTH_NAME = f"{SERVICE_NAME}/store"
PROJECTIONS_HEALTH_NAME = f"{SERVICE_NAME}/projections"
CHECKPOINTS_HEALTH_NAME = f"{SERVICE_NAME}/checkpoints"
_log = structlog.get_logger("ledger.api")


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    private_key: Path
    client_ca: Path | None = None  # set: mutual TLS, clients must present a certificate


@dataclass(frozen=True)
class CheckpointSettings:
    """Signed checkpoints of the log on an interval (ledger/api/checkpointer.py)."""

    key: Ed25519PrivateKey
    interval_s: float = limits.checkpoint_interval_s_default
    directory: Path | None = None  # also written here as files, for the operator to ship


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:50051"
    group_commit: bool = True
    group_window_ms: float = limits.group_commit_window_ms_default
    groups_in_flight: int = limits.group_commit_groups_in_flight_default
    workers: int = limits.server_workers_default
    grace_s: float = limits.shutdown_grace_s
    concurrent_calls_max: int = limits.concurrent_calls_max
    tls: TlsFiles | None = None
    projections: bool = True  # keep the read models current in a background thread
    checkpoints: CheckpointSettings | None = None


class LedgerServer:
    """A started server; `port` is the bound port (useful with port 0).

    Args:
        metrics: a Prometheus endpoint whose reader `telemetry` was built with; bound here,
            beside the gRPC port, and closed at stop.
    """

    def __init__(
        self,
        ledger: Ledger,
        authenticator: Authenticator,
        telemetry: Telemetry,
        settings: ServerSettings,
        database_url: str,
        metrics: MetricsEndpoint | None = None,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.settings = settings
        self.telemetry = telemetry
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ledger-store")
        self.committer = committer = GroupCommitter(
            ledger,
            self.executor,
            enabled=settings.group_commit,
            window_ms=settings.group_window_ms,
            group_size_max=limits.batch_size_max,
            queue_length_max=limits.group_commit_queue_length_max,
            groups_in_flight_max=settings.groups_in_flight,
            on_group=telemetry.record_group,
        )
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limits.message_size_max),
                ("grpc.max_send_message_length", limits.message_size_max),
            ],
            maximum_concurrent_rpcs=settings.concurrent_calls_max,
        )
        self.projections = (
            Projections(ledger, database_url, telemetry.record_lag)
            if settings.projections
            else None
        )
        self.checkpointer = _checkpointer(ledger, settings.checkpoints)
        self.health = HealthServicer()
        self.monitor = self._health_monitor()
        servicer = LedgerServicer(
            ledger,
            committer,
            authenticator,
            telemetry,
            self.executor,
            projection=self.projections.reads if self.projections else None,
            store_reachable=lambda: self.monitor.reachable,
        )
        add_service(self.server, SERVICE, servicer)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        enable_reflection(self.server, (SERVICE_NAME, health_name))
        self.port = self._bind()
        if metrics is not None:
            metrics.bind()

    def _health_monitor(self) -> HealthMonitor:
        probe = self.ledger.log.open_probe()
        components = {}
        if self.projections is not None:
            components[PROJECTIONS_HEALTH_NAME] = lambda: self.projections.follower.healthy
        if self.checkpointer is not None:
            components[CHECKPOINTS_HEALTH_NAME] = lambda: self.checkpointer.healthy
        services = ("", SERVICE_NAME, STORE_HEALTH_NAME)
        return HealthMonitor(self.health, probe, services, components)

    def _bind(self) -> int:
        tls = self.settings.tls
        if tls is None:
            port = self.server.add_insecure_port(self.settings.listen)
        else:
            port = self.server.add_secure_port(self.settings.listen, _credentials(tls))
        if port == 0:
            raise InvalidArgument("listen", f"cannot listen on {self.settings.listen}")
        return port

    async def start(self) -> None:
        if self.projections is not None:
            self.projections.follower.start()
        if self.checkpointer is not None:
            self.checkpointer.start()
        await self.monitor.start()
        await self.server.start()

    async def stop(self) -> None:
        """Stops taking calls, drains those in flight for up to grace_s, then closes."""
        await self.health.enter_graceful_shutdown()
        await self.monitor.stop()
        await self.server.stop(self.settings.grace_s)
        await self.committer.drain()  # groups of calls the grace period cut short
        if self.projections is not None:
            self.projections.close()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.executor.shutdown(wait=True)
        self.ledger.close()
        if self.metrics is not None:
            self.metrics.close()
        self.telemetry.shutdown()


class Projections:
    """The read models of a server: a follower keeping them current through its own store
    connection, and a second connection for queries."""

    def __init__(self, ledger: Ledger, database_url: str, on_lag) -> None:
        self.writes: ProjectionStore = open_projection_store(database_url)
        self.reads: ProjectionStore = open_projection_store(database_url)
        runner = ProjectionRunner(ledger.log, self.writes, on_lag=on_lag)
        self.follower = ProjectionFollower(runner)

    def close(self) -> None:
        self.follower.stop()
        self.writes.close()
        self.reads.close()


def _checkpointer(ledger: Ledger, settings: CheckpointSettings | None) -> Checkpointer | None:
    if settings is None:
        return None
    return Checkpointer(ledger, settings.key, settings.interval_s, settings.directory)


def _credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    try:
        key, certificate = tls.private_key.read_bytes(), tls.certificate.read_bytes()
        client_ca = tls.client_ca.read_bytes() if tls.client_ca else None
    except OSError as error:
        raise InvalidArgument("tls", f"cannot read {error.filename}: {error.strerror}") from None
    return grpc.ssl_server_credentials(
        [(key, certificate)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def serve_until_signalled(server: LedgerServer, announce) -> None:
    """Runs the server until SIGTERM or SIGINT, then drains and stops it."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await server.start()
    announce(server)
    await stopping.wait()
    _log.info("draining", grace_s=server.settings.grace_s)
    await server.stop()
    _log.info("stopped")
