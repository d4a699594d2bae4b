"""PostgreSQL faults under a running ledger, on a private cluster (never the shared server)."""

import pytest
from eventsourcing.persistence import PersistenceError

from projections.stores import open_projection_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_a_read_model_connection_broken_by_the_server_is_opened_again(private_postgres):
    """The call meeting a killed connection fails as a store error (UNAVAILABLE to a client);
    the next one reconnects, so the read models need no process restart."""
    url = private_postgres.create_database("views")
    views = open_projection_store(url)
    try:
        assert views.position() == 0
        assert private_postgres.terminate_backends("views") == 1
        with pytest.raises(PersistenceError):
            views.position()
        assert views.position() == 0
    finally:
        views.close()
