"""Starting, killing and restarting `ledger serve` for the fault scenarios.

A restarted server listens on the address of the one it replaces and accepts the same
tokens, as a supervisor would bring it back: the load's clients reconnect by themselves."""

import time
from pathlib import Path

from tests.grpc.conftest import RunningServer, start_server, stop_server

EXIT_TIMEOUT_S = 30
BIND_RETRY_S = 20
BIND_RETRY_PAUSE_S = 0.2


def restart(server: RunningServer, workdir: Path, *extra: str) -> RunningServer:
    """A new server process on the same store, address and tokens.

    The freed port can be held for a moment by another socket: a client reconnecting to the
    dead address may be given that very port as its own source port and connect to itself.
    A start that failed to bind is then tried again, for a bounded time, as a supervisor
    would; any other failure is raised at once."""
    deadline = time.monotonic() + BIND_RETRY_S
    while True:
        logged = server.log.stat().st_size
        try:
            return start_server(
                server.database_url, workdir, *extra, listen=server.target, tokens=server.tokens
            )
        except RuntimeError:
            written = server.log.read_bytes()[logged:]
            if b"Failed to bind" not in written or time.monotonic() > deadline:
                raise
            time.sleep(BIND_RETRY_PAUSE_S)


def kill_and_restart(server: RunningServer, workdir: Path) -> RunningServer:
    """SIGKILL: no drain, no cleanup, calls in flight cut off; then a restart."""
    server.process.kill()
    server.process.wait(timeout=EXIT_TIMEOUT_S)
    return restart(server, workdir)


def stop_if_running(server: RunningServer) -> int | None:
    """SIGTERM and the exit status, or None if the process is gone already (a failed test)."""
    if server.process.poll() is not None:
        return None
    return stop_server(server)


def stop_cleanly(server: RunningServer) -> None:
    """SIGTERM; the server must exit 0 (one gone already, None, fails too)."""
    status = stop_if_running(server)
    assert status == 0, f"the server's exit status: {status}"
