"""SIGKILL of `ledger serve` under concurrent load with resends, on SQLite and PostgreSQL:
every acknowledged command is stored once, none is doubled, balances equal the model and an
independent fold, and the audit passes."""

import random

import pytest

from tests.faults.cleanup import cleanup
from tests.faults.load import Load, check_store, random_pause
from tests.faults.servers import kill_and_restart, stop_cleanly
from tests.grpc.conftest import start_server

pytestmark = pytest.mark.slow

KILL_COUNT = 3
ANSWERS_BETWEEN_FAULTS = 200


def test_sigkill_under_load_loses_and_doubles_nothing(database_url, tmp_path, fault_figures):
    """Three SIGKILLs at random moments under load lose no acknowledged command, double none."""
    server = start_server(database_url, tmp_path)
    rng = random.Random(7)
    # The load stops first, then the server: the lambda reads `server` then, the last one.
    with (
        cleanup(lambda: stop_cleanly(server)),
        Load(server.target, server.tokens["admin"], "kill") as load,
    ):
        for _ in range(KILL_COUNT):
            load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
            random_pause(rng)
            server = kill_and_restart(server, tmp_path)
        load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
    fault_figures(**check_store(database_url, load.tally), kills=KILL_COUNT)
