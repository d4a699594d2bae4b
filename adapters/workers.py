"""Several worker processes serving one port: a process bound to one core (its interpreter
lock) is what limits an HTTP adapter's throughput, so a deployment may run N of them.

The parent binds the listening socket, forks the workers, and only then announces the
address: every worker accepts on that one inherited socket, and the kernel hands each new
connection to one of the workers waiting in `accept`. Each worker makes everything else of
its own after the fork (its engine channels, its store connections, its metrics): a gRPC
channel must never cross a fork. So a worker's `/metrics` counts its own requests only.

The parent serves nothing. SIGTERM or SIGINT is passed on to every worker, which drains and
exits 0; the parent then exits 0. A worker that exits by itself (a crash) stops the others,
and the parent exits 1, so a supervisor restarts the whole adapter.
"""

import contextlib
import ctypes
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable

from adapters import limits
from adapters.process import announced, bound_socket, exit_cleanly_on_signals

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def serve_in_workers(listen: str, workers: int, serve: Callable[[socket.socket], None]) -> None:
    """Binds listen, then runs serve(socket) in `workers` forked processes (in this one for 1)."""
    assert 1 <= workers <= limits.http_workers_max, workers
    sock = bound_socket(listen)
    if workers == 1:
        exit_cleanly_on_signals()
        announced(sock)
        try:
            serve(sock)
        finally:
            sock.close()
        return
    pids = [_fork_worker(sock, serve) for _ in range(workers)]
    announced(sock)
    sock.close()  # the workers hold it
    raise SystemExit(_supervise(pids))


def _fork_worker(sock: socket.socket, serve: Callable[[socket.socket], None]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    status = 1
    try:
        exit_cleanly_on_signals()
        _stop_with_the_parent(parent)
        serve(sock)
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)  # never back into the parent's code
    raise AssertionError("unreachable")


def _stop_with_the_parent(parent: int) -> None:
    """On Linux a worker is sent SIGTERM (and drains) when the parent dies, even by SIGKILL,
    so no worker goes on serving the port unsupervised."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above
        raise SystemExit(0)


def _supervise(pids: list[int]) -> int:
    """Waits for every worker; the parent's exit status."""
    running = set(pids)
    stopping = False

    def pass_on(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(running, signum)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, pass_on)
    failed = False
    while running:
        pid, status = os.wait()
        running.discard(pid)
        if not stopping:  # a worker ended by itself: the adapter is not whole any more
            failed = True
            stopping = True
            _signal_all(running, signal.SIGTERM)
        elif os.waitstatus_to_exitcode(status) != 0:
            failed = True
    return 1 if failed else 0


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # already gone; os.wait collects it
            os.kill(pid, signum)
