"""A key sent for two players where the store cannot refuse it (a distributed engine keeps
each idempotency record in its wallet's partition): the follower flags it for reconciliation
and the audit names it. Fed pages as such a store would hold them, on a real PostgreSQL
projection store; `tests/citus/` does the same through a real cluster."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from projections.page import fold_page
from projections.stores import open_projection_store
from tests.builders import command_recorded
from tests.conftest import drop_pg_schema, new_pg_schema

pytestmark = pytest.mark.postgres

AT = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.fixture
def store(pg_database):
    """A PostgreSQL projection store: the only one beside a partitioned log."""
    url = new_pg_schema(pg_database)
    opened = open_projection_store(url)
    yield opened
    opened.close()
    drop_pg_schema(url)


def test_a_key_stored_for_a_second_wallet_is_flagged_once(store):
    """The first wallet to use a key owns it; the same record id in another partition, for
    another wallet, is one flag naming both wallets and where the second record is."""
    reused, other = uuid4(), uuid4()
    first_wallet, second_wallet = uuid4(), uuid4()
    store.apply(
        fold_page(
            [
                (1, command_recorded(reused, first_wallet, "tx-1")),
                (2, command_recorded(other, first_wallet, "tx-2")),
            ],
            1,
            partition=3,
            track_keys=True,
        ),
        expected_position=0,
    )
    assert store.key_reuses() == []
    store.apply(
        fold_page(
            [(1, command_recorded(reused, second_wallet, "tx-1"))], 1, partition=9, track_keys=True
        ),
        expected_position=0,
    )
    assert store.key_reuses() == [("provider:hub88", "tx-1", second_wallet, first_wallet, 9, 1)]
    assert store.positions(10)[3] == 2 and store.positions(10)[9] == 1


def test_without_tracking_no_key_is_recorded(store):
    """Beside a store that refuses reused keys itself, the follower records no key uses."""
    page = fold_page([(1, command_recorded(uuid4(), uuid4(), "tx-9"))], 1, partition=0)
    assert page.key_uses == []
    store.apply(page, expected_position=0)
    assert store.key_reuses() == []
