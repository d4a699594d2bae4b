"""The Prometheus endpoint of `ledger serve --metrics-listen HOST:PORT`.

The OpenTelemetry metrics the server records (calls, outcomes, latency, group-commit sizes,
projection lag) are read by the SDK's Prometheus reader into a registry of this endpoint's
own, never the process-wide default one, and served as Prometheus text by
prometheus-client's WSGI application at `http://HOST:PORT/metrics`: the exposition format is
the libraries', not ours.

Bounded: one scrape is served at a time, on a thread of its own, and a client silent for
`limits.metrics_request_timeout_s` is dropped. No TLS and no authentication: bind it to
loopback or a private network (docs/configuration.md).
"""

import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry, make_wsgi_app

from ledger.core import limits
from ledger.core.errors import InvalidArgument

FIELD = "metrics_listen"
PATH = "/metrics"


class _QuietHandler(WSGIRequestHandler):
    """No access lines on standard error, which holds the JSON log; silent clients time out."""

    timeout = limits.metrics_request_timeout_s

    def log_message(self, format: str, *args: object) -> None:
        pass


class MetricsEndpoint:
    """A Prometheus reader for the meter provider (`reader`) and, once bound, its HTTP server.

    Args:
        listen: HOST:PORT, with an IPv6 host in brackets; port 0 lets the OS pick one.
    """

    def __init__(self, listen: str) -> None:
        self.host, self.port = parse_listen(listen)
        self.listen = listen
        self.registry = CollectorRegistry()
        self.reader = PrometheusMetricReader(registry=self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    def bind(self) -> int:
        """Listens and serves scrapes in the background; returns the bound port."""
        assert self._server is None
        server_class = _server_class(self.host, self.port)
        try:
            server = make_server(
                self.host,
                self.port,
                make_wsgi_app(self.registry),
                server_class,
                handler_class=_QuietHandler,
            )
        except OSError as error:
            reason = error.strerror or str(error)
            raise InvalidArgument(FIELD, f"cannot listen on {self.listen}: {reason}") from None
        self._server, self.port = server, server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever, name="ledger-metrics", daemon=True
        )
        self._thread.start()
        return self.port

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=limits.shutdown_grace_s)


def parse_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (`[::1]:9464` for IPv6) as a host and a port, or InvalidArgument."""
    host, separator, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or int(port) > 65_535:
        raise InvalidArgument(FIELD, f"must be HOST:PORT with a port up to 65535, not {listen!r}")
    return host, int(port)


def _server_class(host: str, port: int) -> type[WSGIServer]:
    """A WSGIServer of the host's address family (IPv4 or IPv6)."""
    try:
        [(family, *_), *_] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise InvalidArgument(FIELD, f"cannot resolve {host}: {error.strerror}") from None
    return type("MetricsServer", (WSGIServer,), {"address_family": family})
