"""The engine every adapter test talks to: a real `ledger serve` process on a fresh store."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.grpc.conftest import RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[RunningServer]:
    """The real engine server on a fresh sqlite store, shared by one test module."""
    workdir = tmp_path_factory.mktemp("engine")
    running = start_server(f"sqlite:///{workdir}/ledger.sqlite3", workdir)
    yield running
    assert stop_server(running) == 0


def postings(engine: RunningServer, key: str) -> dict[str, str]:
    """The postings the engine recorded under an idempotency key, by account."""
    with engine.client() as admin:
        reply = admin.get_transaction(idempotency_key=key)
    return {p.account: p.amount for entry in reply.entries for p in entry.postings}


def self_exclude(engine: RunningServer, player: str, currency: str) -> None:
    """Self-excludes the player for 30 days, through the engine with the admin token."""
    with engine.client() as admin:
        reply = admin.set_limits(
            idempotency_key=f"exclude-{player}-{currency}", player_id=player, currency=currency,
            self_excluded_until=datetime.now(UTC) + timedelta(days=30),
        )  # fmt: skip
    assert reply.outcome == "OK"
