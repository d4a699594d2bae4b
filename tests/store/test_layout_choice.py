"""Which layout a PostgreSQL store whose URL names none is opened with: the decision table
row by row, then on real schemas (new, single, mid-migration, migrated)."""

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.core.errors import InvalidArgument
from ledger.service.application import Ledger
from ledger.store.database import (
    LAYOUT_CITUS,
    LAYOUT_PARTITIONED,
    LAYOUT_SINGLE,
    store_environment,
    with_layout,
)
from ledger.store.layout import FoundTables, chosen_layout, found_tables
from ledger.store.partitioned_log import PartitionedEventLog
from tests.builders import EUR, deposit
from tests.conftest import drop_pg_schema, new_pg_schema


def _found(**present: bool) -> FoundTables:
    fields = {"single": False, "partitioned": False, "copied": False}
    return FoundTables(**{**fields, "citus": False, "distributed": False, **present})


@pytest.mark.parametrize(
    ("present", "layout"),
    [
        ({"partitioned": True, "distributed": True, "citus": True}, LAYOUT_CITUS),
        ({"partitioned": True, "single": True, "copied": True}, LAYOUT_PARTITIONED),
        ({"partitioned": True}, LAYOUT_PARTITIONED),
        ({"single": True}, LAYOUT_SINGLE),
        ({"single": True, "citus": True}, LAYOUT_SINGLE),
        ({"citus": True}, LAYOUT_CITUS),
        ({}, LAYOUT_PARTITIONED),
    ],
)
def test_each_row_of_the_layout_table(present, layout):
    """Each combination of tables found gives the layout the module's rules name."""
    assert chosen_layout(_found(**present)) == layout


def test_an_unfinished_migration_is_refused_naming_both_ways_on():
    """The single log beside a partitioned copy never marked finished is not guessed at."""
    with pytest.raises(InvalidArgument, match="unfinished `ledger migrate`") as refused:
        chosen_layout(_found(single=True, partitioned=True))
    assert refused.value.field == "database_url"
    assert "?layout=single" in str(refused.value)


def test_a_distributed_log_beside_an_uncopied_single_log_is_refused():
    """Empty Citus tables made beside an old single log (a `?layout=citus` run by mistake)
    are not taken for the store's history: every balance would read zero."""
    found = _found(single=True, partitioned=True, distributed=True, citus=True)
    with pytest.raises(InvalidArgument, match="no `ledger migrate` copied into") as refused:
        chosen_layout(found)
    assert "?layout=single" in str(refused.value) and "?layout=citus" in str(refused.value)


def test_a_finished_copy_whose_partitioned_log_is_gone_is_refused():
    """With the copy marked finished but the partitioned tables dropped, the single log,
    which stopped at the migration, is not served in their place."""
    with pytest.raises(InvalidArgument, match="partitioned log is gone") as refused:
        chosen_layout(_found(single=True, copied=True))
    assert "?layout=single" in str(refused.value)


@pytest.fixture
def plain_url(pg_database) -> Iterator[str]:
    """A fresh schema's URL naming no layout."""
    url = new_pg_schema(pg_database)
    plain = url.replace("&layout=partitioned", "").replace("&layout=single", "")
    yield plain
    drop_pg_schema(url)


def _partitions(url: str) -> int:
    with Ledger(url) as ledger:
        return ledger.log.partitions


@pytest.mark.postgres
def test_a_new_store_is_partitioned_and_an_old_single_log_stays_single(plain_url):
    """A URL naming no layout creates the partitioned log in an empty schema, and keeps
    opening a single log made before (with `layout=single`) as the single log."""
    assert _partitions(plain_url) == 256
    single = with_layout(new_pg_schema(plain_url.partition("?schema=")[0]), LAYOUT_SINGLE)
    try:
        with Ledger(single) as ledger:
            ledger.execute(deposit("d1", EUR))
        unnamed = single.replace("&layout=single", "")
        assert _partitions(unnamed) == 1
        assert found_tables(store_environment(unnamed)).single
    finally:
        drop_pg_schema(single)


@pytest.mark.postgres
def test_a_store_mid_migration_is_refused_until_the_copy_is_finished(plain_url):
    """With a copy started but not proved, a URL naming no layout is refused with the way
    on; after `ledger migrate` finishes, it opens the partitioned copy."""
    single = with_layout(plain_url, LAYOUT_SINGLE)
    with Ledger(single) as ledger:
        ledger.execute(deposit("d1", EUR))
    # The partitioned tables exist, empty: a copy begun and stopped.
    PartitionedEventLog(store_environment(with_layout(plain_url, LAYOUT_PARTITIONED))).close()
    result = CliRunner().invoke(main, ["audit", "--database-url", plain_url, "--no-projections"])
    assert result.exit_code == 2
    assert "unfinished `ledger migrate`" in result.output
    migrated = CliRunner().invoke(main, ["migrate", "--database-url", plain_url])
    assert migrated.exit_code == 0, migrated.output
    assert _partitions(plain_url) == 256
    with Ledger(plain_url) as ledger:
        assert ledger.balances("p1", "EUR").cash == EUR


@pytest.mark.postgres
def test_migrate_refuses_a_store_with_no_single_log(plain_url):
    """`ledger migrate` on a store that is partitioned already says there is nothing to
    carry over."""
    _partitions(plain_url)
    result = CliRunner().invoke(main, ["migrate", "--database-url", plain_url])
    assert result.exit_code == 2
    assert "holds no single event log" in result.output


@pytest.mark.postgres
def test_a_single_log_written_after_the_copy_is_refused_not_dropped(plain_url):
    """A server still on the single log after `ledger migrate` marked its copy (started
    before it, or naming `layout=single`) writes events the copy lacks: a URL naming no
    layout is refused, naming both layouts, instead of serving the copy without them."""
    single = with_layout(plain_url, LAYOUT_SINGLE)
    with Ledger(single) as ledger:
        ledger.execute(deposit("d1", EUR))
    migrated = CliRunner().invoke(main, ["migrate", "--database-url", plain_url])
    assert migrated.exit_code == 0, migrated.output
    with Ledger(single) as ledger:
        ledger.execute(deposit("d2", EUR))
    with pytest.raises(InvalidArgument, match="written after `ledger migrate`") as refused:
        Ledger(plain_url)
    assert "?layout=single" in str(refused.value)
    assert "?layout=partitioned" in str(refused.value)
