"""The console's document views: equal to the wallets' own folds, rebuilt on a new layout."""

import sqlite3

from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from projections.runner import ProjectionRunner
from projections.stores import LAYOUT_VERSION, open_projection_store
from projections.views import SUSPENSE, WITHDRAWAL
from tests.builders import EUR, PLAYER, bet, deposit, forfeit, grant, rollback
from tests.projections.conftest import make_history


def _project(database_url: str) -> None:
    with Ledger(database_url, currency_scales="ignore", store_kind="either") as ledger:
        store = open_projection_store(database_url)
        ProjectionRunner(ledger.log, store).catch_up()
        store.close()


def test_wallet_documents_equal_each_wallets_fold(history):
    """Limits, pending increases and bonus wagering progress match the wallet's own state."""
    _project(history)
    store = open_projection_store(history)
    with Ledger(history, currency_scales="ignore", store_kind="either") as ledger:
        for player_id in store.player_ids("", "", 1000):
            for doc in store.wallets_of(player_id):
                state = ledger.wallet(player_id, doc["currency"])
                record = state.bonus_record
                assert doc["bonus_id"] == (record.bonus_id if record else None)
                if record is not None:
                    assert int(doc["wagering_progress"]) == record.wagering_progress
                limits = doc.get("limits") or {}
                assert limits.get("deposit_limit_24h") == (
                    str(state.limits.deposit_limit_24h)
                    if state.limits.deposit_limit_24h is not None
                    else None
                )
    store.close()


def test_queues_hold_what_the_history_left_open(history):
    """Pending withdrawals and the suspense queue equal what the demo left unresolved."""
    _project(history)
    store = open_projection_store(history)
    pending = store.documents(WITHDRAWAL, "AND status = ?", ("pending",), limit=10_000)
    with Ledger(history, currency_scales="ignore", store_kind="either") as ledger:
        for row in pending:
            state = ledger.wallet(row["player_id"], row["currency"])
            assert state.withdrawals[row["withdrawal_key"]].status == "pending"
    assert store.documents(SUSPENSE, "AND status = ?", ("held",), limit=10) == []
    store.close()


def test_a_store_of_an_older_layout_rebuilds_its_views(tmp_path):
    """Views written under another layout version are dropped on open and rebuilt in full."""
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    make_history(url, players=6, rounds=3)
    _project(url)
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        db.execute("UPDATE projection_layout SET version = ?", (LAYOUT_VERSION - 1,))
        db.execute("DELETE FROM view_documents")
    store = open_projection_store(url)
    assert store.position() == 0 and store.player_ids("", "", 10) == []
    store.close()
    _project(url)
    store = open_projection_store(url)
    assert len(store.player_ids("", "", 100)) == 6
    store.close()


def test_a_rolled_back_bet_of_an_ended_bonus_leaves_the_next_bonus_wagering_alone(tmp_path):
    """A bet wagered under one bonus, rolled back after that bonus was forfeited and another
    granted, takes nothing off the new bonus's progress: in the view as in the wallet."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    with Ledger(url) as ledger:
        for command in (
            deposit("d1", 100 * EUR),
            grant("g1", 10 * EUR, multiplier=5),
            bet("b1", 20 * EUR),
            forfeit("f1"),
            grant("g2", 10 * EUR, multiplier=5),
            rollback("rb1", "b1"),
        ):
            assert ledger.execute(command).outcome is Outcome.OK, command
        record = ledger.wallet(PLAYER, "EUR").bonus_record
    assert record.wagering_progress == 0
    _project(url)
    store = open_projection_store(url)
    (doc,) = store.wallets_of(PLAYER)
    store.close()
    assert (doc["bonus_id"], doc["wagering_progress"]) == (record.bonus_id, "0")
