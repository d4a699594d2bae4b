"""The fault harness's restart: a port held for a moment after its server stopped does not
fail the scenario, and any other start failure still does."""

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.faults.servers import BIND_RETRY_S, restart, stop_if_running
from tests.grpc.conftest import start_server, stop_server

POLL_S = 0.05


def _release_after_a_failed_bind(holder: socket.socket, log: Path) -> None:
    """Closes holder once the server's log shows a start that failed to bind (or after the
    restart's own bound): the port is held exactly until a retry is needed, however slowly
    a busy machine starts the server."""
    deadline = time.monotonic() + BIND_RETRY_S
    while b"Failed to bind" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(POLL_S)
    holder.close()


def test_a_restart_waits_out_a_port_held_for_a_moment(tmp_path):
    """While another socket holds the stopped server's port, the restart is tried again and
    comes up on the same address once the port is free."""
    server = start_server(f"sqlite:///{tmp_path}/store.sqlite3", tmp_path)
    assert stop_server(server) == 0
    host, port = server.target.rsplit(":", 1)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((host, int(port)))
    holder.listen()
    threading.Thread(target=_release_after_a_failed_bind, args=(holder, server.log)).start()
    again = restart(server, tmp_path)
    try:
        assert again.target == server.target
        assert b"Failed to bind" in server.log.read_bytes()
        assert len(again.client().get_log_heads()) == 1  # it answers: one partition, SQLite
    finally:
        assert stop_if_running(again) == 0


def test_a_restart_that_fails_otherwise_is_raised_at_once(tmp_path):
    """A start that fails for another reason than the port is not tried again."""
    server = start_server(f"sqlite:///{tmp_path}/store.sqlite3", tmp_path)
    assert stop_server(server) == 0
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        restart(server, tmp_path, "--max-concurrent-calls", "0")
    assert time.monotonic() - started < BIND_RETRY_S
