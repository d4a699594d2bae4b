"""PostgreSQL faults under a running ledger, on a private cluster (never the shared server):
terminated backends, a fast restart and a crash (`immediate`), with clients resending on
UNAVAILABLE. Nothing acknowledged is lost, nothing doubled, and the same server process
serves commands and read models again afterwards without being restarted."""

import random
import time

import pytest

from ledger.core.outcomes import Outcome
from ledger.event_log import log_size
from ledger.service.application import Ledger
from projections.stores import open_projection_store
from tests.builders import EUR, deposit
from tests.faults.cleanup import cleanup
from tests.faults.load import Load, check_store, random_pause, wait_until
from tests.faults.servers import stop_cleanly
from tests.grpc.conftest import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DATABASE = "faults"
TERMINATION_COUNT = 2
# (stop mode, seconds down): a quick restart, and a crash that keeps the database away for
# seconds, while calls wait for the pool to reconnect or fail UNAVAILABLE and are resent.
RESTARTS = (("fast", 0.0), ("immediate", 4.0))
ANSWERS_BETWEEN_FAULTS = 200
VIEWS_TIMEOUT_S = 60


def test_postgres_faults_under_load_lose_and_double_nothing(
    private_postgres, tmp_path, fault_figures
):
    """Backend terminations, a restart and a crash of PostgreSQL lose and double nothing."""
    url = private_postgres.create_database(DATABASE)
    server = start_server(url, tmp_path)
    rng = random.Random(11)
    terminated = 0
    with (
        cleanup(lambda: stop_cleanly(server)),
        Load(server.target, server.tokens["admin"], "pg") as load,
    ):
        for _ in range(TERMINATION_COUNT):
            load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
            random_pause(rng)
            terminated += private_postgres.terminate_backends(DATABASE)
        for mode, down_s in RESTARTS:
            load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
            random_pause(rng)
            private_postgres.stop(mode)
            time.sleep(down_s)
            private_postgres.start()
        load.wait_for_acknowledged(ANSWERS_BETWEEN_FAULTS)
        load.stop()
        assert server.process.poll() is None, "the server died with its database"
        _wait_for_views(server, url)
    fault_figures(
        **check_store(url, load.tally),
        backends_terminated=terminated,
        terminations=TERMINATION_COUNT,
        restarts=len(RESTARTS),
    )


def _wait_for_views(server: RunningServer, url: str) -> None:
    """The server's read models answer again and catch up with the log."""
    with Ledger(url) as ledger:
        last = log_size(ledger.log)
    with server.client() as client:
        wait_until(
            lambda: client.get_trial_balance().as_of_position >= last,
            VIEWS_TIMEOUT_S,
            "the server's read models catching up",
        )


def test_pooled_connections_killed_by_the_server_are_replaced(private_postgres):
    """After the server drops every pooled connection, the next command and query succeed."""
    url = private_postgres.create_database("pooled")
    with Ledger(url) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        assert private_postgres.terminate_backends("pooled") > 0
        assert ledger.execute(deposit("d2", 5 * EUR)).outcome is Outcome.OK
        assert ledger.execute(deposit("d1", 10 * EUR)).outcome is Outcome.DUPLICATE


def test_a_read_model_connection_broken_by_the_server_is_opened_again(private_postgres):
    """A read meeting a connection the server killed reopens it and is tried once more, so
    it succeeds and the read models need no process restart."""
    url = private_postgres.create_database("views")
    views = open_projection_store(url)
    try:
        assert views.position() == 0
        assert private_postgres.terminate_backends("views") == 1
        assert views.position() == 0
        assert private_postgres.terminate_backends("views") == 1
        assert views.position() == 0
    finally:
        views.close()
