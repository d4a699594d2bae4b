"""The fault harness's restart: a port held for a moment after its server stopped does not
fail the scenario, and any other start failure still does."""

import socket
import threading
import time

import pytest

from tests.faults.servers import BIND_RETRY_S, restart, stop_if_running
from tests.grpc.conftest import start_server, stop_server

HELD_S = 1.0


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
    threading.Timer(HELD_S, holder.close).start()
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
