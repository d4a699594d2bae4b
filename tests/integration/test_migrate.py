"""`ledger migrate`: a single-log PostgreSQL store carried over to the partitioned layout,
audited, resumable, with the old tables untouched."""

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.core import limits
from ledger.core.outcomes import Outcome
from ledger.event_log import log_size, merged_records
from ledger.service.application import Ledger
from ledger.service.migration import MigrationRefused, migrate
from ledger.store.database import store_environment, with_layout
from ledger.store.partitioned_log import PartitionedEventLog
from ledger.store.recorder_log import RecorderEventLog
from projections.audit import audit
from tests.builders import EUR, bet, deposit, grant, hold, rollback, win, withdraw
from tests.conftest import SteppingClock, drop_pg_schema, new_pg_schema
from tests.integration.raw_store import RawStore

pytestmark = pytest.mark.postgres

PLAYERS = ("p1", "p2", "p3", "p4")


@pytest.fixture
def single_url(pg_database) -> Iterator[str]:
    url = new_pg_schema(pg_database)
    yield with_layout(url, "single")
    drop_pg_schema(url)


def write_history(url: str) -> dict[str, int]:
    """A few players' deposits, bets, wins, a rollback, a withdrawal, a bonus and a suspense
    item; returns each player's cash."""
    with Ledger(url, clock=SteppingClock()) as ledger:
        for player in PLAYERS:
            ledger.execute(deposit(f"d-{player}", 100 * EUR, player=player))
            ledger.execute(bet(f"b-{player}", 10 * EUR, player=player))
            ledger.execute(win(f"w-{player}", f"b-{player}", 25 * EUR, player=player))
        ledger.execute(bet("b-late", 5 * EUR, player="p1"))
        ledger.execute(rollback("r-late", "b-late", player="p1"))
        ledger.execute(withdraw("wd-p2", 30 * EUR, player="p2"))
        ledger.execute(grant("g-p3", 10 * EUR, player="p3"))
        ledger.execute(hold("h-1", 7 * EUR))
        return {player: ledger.balances(player, "EUR").cash for player in PLAYERS}


def test_a_migrated_store_serves_the_same_balances_and_remembers_its_keys(single_url):
    """After `ledger migrate`, the partitioned store holds every event, audits clean, gives
    each player the same balances, answers a resent command as a DUPLICATE, and the old
    table still holds every row it held."""
    cash = write_history(single_url)
    rows = RawStore(single_url).count()
    result = CliRunner().invoke(main, ["migrate", "--database-url", single_url])
    assert result.exit_code == 0, result.output
    assert "found 0 problems" in result.output
    target = with_layout(single_url, "partitioned")
    with Ledger(target, clock=SteppingClock()) as ledger:
        assert ledger.log.partitions > 1 and log_size(ledger.log) == rows
        assert {p: ledger.balances(p, "EUR").cash for p in PLAYERS} == cash
        assert audit(ledger.log, None).passed
        resent = ledger.execute(deposit("d-p1", 100 * EUR, player="p1"))
        assert resent.outcome is Outcome.DUPLICATE
        assert ledger.execute(deposit("d-p1-2", EUR, player="p1")).outcome is Outcome.OK
    assert RawStore(single_url).count() == rows


def test_an_interrupted_copy_resumes_where_it_stopped(single_url):
    """A copy that holds a prefix of the old log (a crash between pages) is completed by the
    next run, each event once, and the copy proves sound."""
    write_history(single_url)
    source = RecorderEventLog(store_environment(single_url))
    target = PartitionedEventLog(store_environment(with_layout(single_url, "partitioned")))
    try:
        prefix = list(merged_records(source))[:7]
        target.copy_in([(r, source.decode(r, source.plaintext(r))) for r in prefix])
        report = migrate(source, target)
        assert report.is_sound, report.findings
        assert report.copied == report.events - 7
        assert log_size(target) == report.events
    finally:
        target.close()
        source.close()


def test_a_target_holding_more_than_the_old_log_is_refused(single_url):
    """A partitioned log with more events than the old one is not its copy: refused."""
    write_history(single_url)
    source = RecorderEventLog(store_environment(single_url))
    target = PartitionedEventLog(store_environment(with_layout(single_url, "partitioned")))
    try:
        records = list(merged_records(source))
        target.copy_in([(r, source.decode(r, source.plaintext(r))) for r in records])
        with Ledger(with_layout(single_url, "partitioned")) as ledger:
            ledger.execute(deposit("extra", EUR, player="p9"))
        with pytest.raises(MigrationRefused, match="not a copy"):
            migrate(source, target)
    finally:
        target.close()
        source.close()


def test_an_old_log_written_during_the_copy_is_refused(single_url, monkeypatch):
    """A server still writing the old store while it is copied makes the copy refused."""
    write_history(single_url)
    monkeypatch.setattr(limits, "migration_page_size", 5)
    source = RecorderEventLog(store_environment(single_url))
    target = PartitionedEventLog(store_environment(with_layout(single_url, "partitioned")))
    writer = Ledger(single_url)
    written = []

    def write_once(done: int) -> None:
        if not written:
            written.append(writer.execute(deposit("during", EUR, player="p8")))

    try:
        with pytest.raises(MigrationRefused, match="written during the copy"):
            migrate(source, target, on_progress=write_once)
    finally:
        writer.close()
        target.close()
        source.close()


def test_migrate_refuses_a_store_that_is_not_a_single_log(single_url):
    """The source must be the single log; --to must name a partitioned store."""
    runner = CliRunner()
    partitioned = with_layout(single_url, "partitioned")
    result = runner.invoke(main, ["migrate", "--database-url", partitioned])
    assert result.exit_code == 2 and "--database-url" in result.output
    result = runner.invoke(main, ["migrate", "--database-url", single_url, "--to", single_url])
    assert result.exit_code == 2 and "--to" in result.output


def test_a_rerun_over_a_live_copy_never_appends_to_it(single_url):
    """A copy that is no prefix of the old log (both written after the migration) is
    refused before anything is copied: resuming by count alone would append the old log's
    newest events to the partitioned log in service."""
    write_history(single_url)
    partitioned = with_layout(single_url, "partitioned")
    result = CliRunner().invoke(main, ["migrate", "--database-url", single_url])
    assert result.exit_code == 0, result.output
    with Ledger(partitioned) as ledger:
        ledger.execute(deposit("after-new", EUR, player="p1"))
    with Ledger(single_url) as ledger:
        for n in range(4):
            ledger.execute(deposit(f"after-old-{n}", EUR, player="p9"))
    source = RecorderEventLog(store_environment(single_url))
    target = PartitionedEventLog(store_environment(partitioned))
    try:
        before = log_size(target)
        with pytest.raises(MigrationRefused, match="not a copy of this store"):
            migrate(source, target)
        assert log_size(target) == before
    finally:
        source.close()
        target.close()
