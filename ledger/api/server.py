"""Composition of the gRPC server: the servicer, health and reflection, message and
concurrency bounds, TLS or mutual TLS, and a graceful drain on SIGTERM or SIGINT.
"""

import asyncio
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ledger.api.auth import Authenticator
from ledger.api.group_commit import GroupCommitter
from ledger.api.handlers import add_service
from ledger.api.servicer import LedgerServicer
from ledger.api.telemetry import Telemetry
from ledger.application import Ledger
from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.v1 import ledger_pb2
from projections.runner import ProjectionRunner
from projections.stores import open_projection_store

SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"]
SERVICE_NAME = SERVICE.full_name
_log = structlog.get_logger("ledger.api")


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    private_key: Path
    client_ca: Path | None = None  # set: mutual TLS, clients must present a certificate


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:50051"
    group_commit: bool = True
    group_window_ms: float = limits.group_commit_window_ms_default
    workers: int = limits.server_workers_default
    grace_s: float = limits.shutdown_grace_s
    concurrent_calls_max: int = limits.concurrent_calls_max
    tls: TlsFiles | None = None
    projections: bool = True  # keep the read models current in a background thread


class LedgerServer:
    """A started server; `port` is the bound port (useful with port 0)."""

    def __init__(self, ledger: Ledger, authenticator: Authenticator, telemetry: Telemetry,
                 settings: ServerSettings, database_url: str) -> None:  # fmt: skip
        self.ledger = ledger
        self.settings = settings
        self.telemetry = telemetry
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ledger-store")
        committer = GroupCommitter(
            ledger, self.executor, enabled=settings.group_commit,
            window_ms=settings.group_window_ms, group_size_max=limits.batch_size_max,
            queue_length_max=limits.group_commit_queue_length_max,
            on_group=telemetry.record_group,
        )  # fmt: skip
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limits.message_size_max),
                ("grpc.max_send_message_length", limits.message_size_max),
            ],
            maximum_concurrent_rpcs=settings.concurrent_calls_max,
        )
        self.follower = (
            ProjectionFollower(ledger, database_url, telemetry.record_lag)
            if settings.projections
            else None
        )
        servicer = LedgerServicer(
            ledger, committer, authenticator, telemetry, self.executor,
            projection=self.follower.reads if self.follower else None,
        )  # fmt: skip
        add_service(self.server, SERVICE, servicer)
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        services = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME)  # fmt: skip
        reflection.enable_server_reflection(services, self.server)
        self.port = self._bind()

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
        if self.follower is not None:
            self.follower.start()
        await self.server.start()
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        """Stops taking calls, drains those in flight for up to grace_s, then closes."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.grace_s)
        if self.follower is not None:
            self.follower.stop()
        self.executor.shutdown(wait=True)
        self.ledger.close()
        self.telemetry.shutdown()


class ProjectionFollower:
    """Keeps the read models current on a thread of its own, with its own store connection;
    queries read through a second connection."""

    def __init__(self, ledger: Ledger, database_url: str, on_lag) -> None:
        self.writes = open_projection_store(database_url)
        self.reads = open_projection_store(database_url)
        self.runner = ProjectionRunner(
            ledger.store.recorder, ledger.store.mapper, self.writes, on_lag=on_lag
        )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ledger-projections", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.follow(self.stopping.is_set)
        except Exception:  # the API keeps serving; the views' lag shows the failure
            _log.exception("projection follower stopped")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=limits.shutdown_grace_s)
        self.writes.close()
        self.reads.close()


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
    announce(server.port)
    await stopping.wait()
    _log.info("draining", grace_s=server.settings.grace_s)
    await server.stop()
    _log.info("stopped")
