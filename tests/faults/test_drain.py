"""SIGTERM under load: `ledger serve` drains the calls in flight and exits 0 within its grace
period; every call racing the drain is answered or fails retryably (UNAVAILABLE, CANCELLED),
and once resent to the restarted server nothing acknowledged is lost or doubled."""

import random
import signal
import time

import pytest

from ledger.core import limits
from tests.faults.cleanup import cleanup
from tests.faults.load import Load, check_store, random_pause
from tests.faults.servers import restart, stop_cleanly
from tests.grpc.conftest import RunningServer, start_server

pytestmark = pytest.mark.slow

DRAIN_COUNT = 2
ANSWERS_BETWEEN_FAULTS = 200


def drain(server: RunningServer) -> float:
    """SIGTERM; asserts a clean exit within the grace period and returns how long it took."""
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=limits.shutdown_grace_s) == 0
    return time.monotonic() - started


def test_sigterm_under_load_drains_and_loses_nothing(database_url, tmp_path, fault_figures):
    """Calls racing two SIGTERMs are answered or resent; none is lost, none doubled."""
    server = start_server(database_url, tmp_path)
    rng = random.Random(5)
    drain_s = []
    # One attempt per call in the client: every status the drain sends reaches the load,
    # which counts it and resends, so the figures show what a draining server answers. The
    # load stops first, then the server: the lambda reads `server` then, the last one.
    with (
        cleanup(lambda: stop_cleanly(server)),
        Load(server.target, server.tokens["admin"], "drain", retry_count_max=1) as load,
    ):
        for _ in range(DRAIN_COUNT):
            load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
            random_pause(rng)
            drain_s.append(drain(server))
            server = restart(server, tmp_path)
        load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
    codes = {f"resent_{code.lower()}": n for code, n in load.tally.retried_codes.items()}
    fault_figures(
        **check_store(database_url, load.tally),
        drains=DRAIN_COUNT,
        drain_s_max=round(max(drain_s), 2),
        **codes,
    )
