"""The partitioned log's own promises, beyond the contract every log keeps: dense positions
per partition in commit order under concurrent writers, idempotency records in their
wallet's partition, the same key for two players refused on one node, and the merge order."""

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.errors import LockNotAvailable

from ledger.core.partition import PARTITION_COUNT, partition_of
from ledger.event_log import AppendConflict, log_pages, merged_records
from ledger.store.database import store_environment
from ledger.store.partitioned_log import PartitionedEventLog
from tests.builders import command_recorded
from tests.conftest import drop_pg_schema, new_pg_schema
from tests.store.test_event_log_contract import event, stream_ids

pytestmark = pytest.mark.postgres

AT = datetime(2026, 12, 6, tzinfo=UTC)
WRITERS = 6
APPENDS_PER_WRITER = 40
RACE_S_MAX = 60


@pytest.fixture
def url(pg_database) -> Iterator[str]:
    schema_url = new_pg_schema(pg_database)
    yield f"{schema_url}&layout=partitioned"
    drop_pg_schema(schema_url)


@pytest.fixture
def log(url) -> Iterator[PartitionedEventLog]:
    opened = PartitionedEventLog(store_environment(url))
    yield opened
    opened.close()


def positions_of(log: PartitionedEventLog, partition: int) -> list[tuple[int, UUID, int]]:
    return [
        (r.position, r.stream_id, r.version)
        for page in log_pages(log, 0, partition=partition, page_size=1000)
        for r in page
    ]


def test_a_new_store_has_its_fixed_partitions_and_keeps_them(log, url):
    """A new store is created with 256 empty partitions; reopening finds the same ones and
    the events written before."""
    assert log.partitions == PARTITION_COUNT and log.heads() == [0] * PARTITION_COUNT
    [stream] = stream_ids(log, 1, partition=7)
    log.append([event(stream, 1)])
    reopened = PartitionedEventLog(store_environment(url))
    try:
        assert reopened.partitions == PARTITION_COUNT
        assert reopened.heads()[7] == 1 and sum(reopened.heads()) == 1
        assert [e for e, _ in reopened.read_stream(stream)] == [event(stream, 1)]
    finally:
        reopened.close()


def test_one_append_over_several_partitions_numbers_each_densely(log):
    """An append's events get positions 1, 2, ... in each partition they fall in, in the
    order given, and each partition's head moves by its share."""
    first, second = stream_ids(log, 2, partition=3)
    [third] = stream_ids(log, 1, partition=9)
    log.append([event(first, 1), event(third, 1), event(second, 1), event(first, 2)])
    assert positions_of(log, 3) == [(1, first, 1), (2, second, 1), (3, first, 2)]
    assert positions_of(log, 9) == [(1, third, 1)]
    assert log.heads()[3] == 3 and log.heads()[9] == 1


def test_a_conflicting_append_moves_no_head(log):
    """An append refused for a taken version leaves every partition's head where it was."""
    [taken] = stream_ids(log, 1, partition=1)
    [other] = stream_ids(log, 1, partition=2)
    log.append([event(taken, 1)])
    with pytest.raises(AppendConflict):
        log.append([event(other, 1), event(taken, 1)])
    assert log.heads()[1] == 1 and log.heads()[2] == 0
    log.append([event(other, 1)])
    assert positions_of(log, 2) == [(1, other, 1)]


def test_an_idempotency_record_lives_in_its_wallets_partition(log):
    """A CommandRecorded is stored in the partition of the wallet it names, not its own."""
    record_id = next(i for i in iter(uuid4, None) if partition_of(i, log.partitions) != 0)
    wallet = next(w for w in iter(uuid4, None) if partition_of(w, log.partitions) == 0)
    log.append([command_recorded(record_id, wallet)])
    [found] = log.read_page(0, 10, partition=0)
    assert found.stream_id == record_id
    assert log.first_events([record_id]) == [command_recorded(record_id, wallet)]


def test_the_same_key_for_two_wallets_in_two_partitions_conflicts_on_one_node(log):
    """A key reused for another player's wallet, in another partition, is still refused:
    on one node the primary key spans partitions."""
    [wallet_a] = stream_ids(log, 1, partition=10)
    [wallet_b] = stream_ids(log, 1, partition=11)
    record_id = uuid4()
    log.append([command_recorded(record_id, wallet_a)])
    with pytest.raises(AppendConflict):
        log.append([command_recorded(record_id, wallet_b)])
    assert log.heads()[11] == 0


def test_concurrent_writers_leave_dense_positions_in_commit_order(log):
    """Writers racing over a few partitions: every partition's positions are 1..n with no gap
    or repeat, every stream's versions ascend with position, and a follower polling a
    partition during the race only ever sees a prefix of it (never a gap filled later)."""
    partitions = (0, 1, 2)
    # Each writer has a stream in every partition, so versions need no lock between writers
    # while every partition has several writers.
    owned = [[stream_ids(log, 1, partition=p)[0] for p in partitions] for _ in range(WRITERS)]
    versions = {stream: 0 for streams in owned for stream in streams}
    done, seen_gaps = threading.Event(), []

    def write(writer: int) -> None:
        rng = random.Random(writer)
        for _ in range(APPENDS_PER_WRITER):
            batch = []
            for stream in rng.sample(owned[writer], 2):
                versions[stream] += 1
                batch.append(event(stream, versions[stream]))
            log.append(batch)

    def follow() -> None:
        last = 0
        while not done.is_set():
            for r in log.read_page(last, 1000, partition=0):
                if r.position != last + 1:
                    seen_gaps.append((last, r.position))
                last = r.position

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    follower = threading.Thread(target=follow)
    follower.start()
    for thread in writers:
        thread.start()
    deadline = time.monotonic() + RACE_S_MAX
    for thread in writers:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
    done.set()
    follower.join(timeout=10)
    assert not any(t.is_alive() for t in writers), "writers did not finish in time"
    assert seen_gaps == []
    total = 0
    for partition in partitions:
        read = positions_of(log, partition)
        assert [position for position, _, _ in read] == list(range(1, len(read) + 1))
        for stream in (streams[partition] for streams in owned):
            stream_versions = [v for _, s, v in read if s == stream]
            assert stream_versions == list(range(1, versions[stream] + 1))
        total += len(read)
    assert total == WRITERS * APPENDS_PER_WRITER * 2 == sum(log.heads())


def _blocked_append_holds(log: PartitionedEventLog, held: int, other: int) -> bool:
    """Whether an append over partitions `other` then `held` (in that order of its events),
    blocked on `held`'s head, which another transaction holds, already holds `other`'s."""
    heads = f'"{log.datastore.schema}"."ledger_log_heads"'
    lock = f"SELECT 1 FROM {heads} WHERE partition_id = %s FOR UPDATE"
    [stream_other], [stream_held] = stream_ids(log, 1, other), stream_ids(log, 1, held)
    with log.datastore.get_connection() as holder, holder.transaction():
        holder.execute(lock, (held,))
        appender = threading.Thread(
            target=log.append, args=([event(stream_other, 1), event(stream_held, 1)],)
        )
        appender.start()
        with log.datastore.get_connection() as probe:
            _wait_for_a_lock_wait(probe, heads)
            try:
                with probe.transaction():
                    probe.execute(lock + " NOWAIT", (other,))
                holds = False
            except LockNotAvailable:
                holds = True
    appender.join(timeout=10)
    assert not appender.is_alive()
    return holds


def _wait_for_a_lock_wait(connection, table: str) -> None:
    """Returns once a session waits for a row lock on table (bounded)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND strpos(query, %s) > 0",
            (table,),
        ).fetchone()
        if next(iter(waiting.values())) > 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"no session started waiting for a lock on {table}")


def test_an_append_takes_head_locks_in_partition_order_so_two_cannot_deadlock(log):
    """Whatever order its events come in, an append holds a lower partition's head while it
    waits for a higher one's, and holds no higher one while it waits for a lower one's: every
    append takes heads in one order, so two appends over the same partitions never deadlock."""
    # Pairs a hash of the partitions orders both ways: an unordered bump fails one of them.
    for low, high in ((3, 5), (2, 100), (60, 61)):
        assert _blocked_append_holds(log, held=high, other=low)
        assert not _blocked_append_holds(log, held=low, other=high)
        assert log.heads()[low] == log.heads()[high] == 2


def test_an_append_behind_a_stuck_head_lock_gives_up_after_the_lock_timeout(url):
    """The lock timeout holds for the one-statement append (set on its session): behind a
    head another transaction never releases, the append fails, and writes nothing."""
    environment = {**store_environment(url), "POSTGRES_LOCK_TIMEOUT": "1"}
    log = PartitionedEventLog(environment)
    heads = f'"{log.datastore.schema}"."ledger_log_heads"'
    [stream] = stream_ids(log, 1, 7)
    # Not from the log's pool, whose sessions end a transaction left idle for a few seconds.
    holder = psycopg.connect(
        **{part: environment[f"POSTGRES_{part.upper()}"] for part in ("dbname", "host", "port")},
        user=environment["POSTGRES_USER"],
    )
    raised: list[Exception] = []

    def append() -> None:
        try:
            log.append([event(stream, 1)])
        except Exception as error:
            raised.append(error)

    try:
        with holder.transaction():
            holder.execute(f"SELECT 1 FROM {heads} WHERE partition_id = 7 FOR UPDATE")
            appender = threading.Thread(target=append)
            appender.start()
            appender.join(timeout=RACE_S_MAX)
            gave_up = not appender.is_alive()
        appender.join(timeout=RACE_S_MAX)  # the holder let go: a waiting append ends now
        assert gave_up, "the append waited past the test's bound: no lock timeout"
        assert len(raised) == 1 and "lock timeout" in str(raised[0])
        assert log.heads()[7] == 0 and log.read_stream(stream) == []
    finally:
        holder.close()
        log.close()


def test_merged_records_order_partitions_by_ledger_time_then_partition(log):
    """merged_records yields every record once, each partition in position order, the
    earliest (recorded_at, partition, position) first between partitions."""
    [early] = stream_ids(log, 1, partition=5)
    [late] = stream_ids(log, 1, partition=4)
    log.append([event(late, 1, at=AT + timedelta(seconds=2))])
    log.append([event(early, 1, at=AT), event(early, 2, at=AT + timedelta(seconds=3))])
    order = [(r.partition, r.position) for r in merged_records(log)]
    assert order == [(5, 1), (4, 1), (5, 2)]
