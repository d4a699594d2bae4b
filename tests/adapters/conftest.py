"""The engine every adapter test talks to: a real `ledger serve` process on a fresh store."""

from collections.abc import Iterator

import pytest

from tests.grpc.conftest import RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[RunningServer]:
    """The real engine server on a fresh sqlite store, shared by one test module."""
    workdir = tmp_path_factory.mktemp("engine")
    running = start_server(f"sqlite:///{workdir}/ledger.sqlite3", workdir)
    yield running
    assert stop_server(running) == 0
