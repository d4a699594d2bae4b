"""Signed checkpoints of a partitioned log: a tree per partition, continued partition by
partition, checked by the audit partition by partition; and the single log's checkpoints
after `ledger migrate`."""

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import ledger.service.checkpoints as checkpoints
from ledger.cli.main import main
from ledger.core.checkpoint import checkpoint_digest
from ledger.core.partition import PARTITION_COUNT, partition_of
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.checkpoints import (
    CHECKPOINT_STREAM_ID,
    CheckpointRefused,
    keep_checkpoint_file,
    load_signing_key,
    newest_kept_checkpoint,
    read_checkpoint_file,
    write_checkpoint,
    write_checkpoint_file,
)
from ledger.service.wallets import wallet_id
from ledger.store.database import with_layout
from projections.checkpoint_check import CheckpointCheck, NamedCheckpoint
from tests.builders import EUR, bet, deposit
from tests.conftest import SteppingClock, drop_pg_schema, new_pg_schema
from tests.integration.raw_store import RawStore
from tests.projections.anchoring import CHECKPOINT_TIME, audited, checkpoint, problems

pytestmark = pytest.mark.postgres

PLAYERS = ("p1", "p2", "p3", "p4", "p5")


@pytest.fixture
def schema(pg_database) -> Iterator[str]:
    url = new_pg_schema(pg_database)
    yield url
    drop_pg_schema(url)


@pytest.fixture
def url(schema) -> str:
    return with_layout(schema, "partitioned")


def _history(url: str, players=PLAYERS) -> None:
    with Ledger(url, clock=SteppingClock()) as ledger:
        for player in players:
            ledger.execute(deposit(f"d-{player}", 10 * EUR, player=player))
            ledger.execute(bet(f"b-{player}", 2 * EUR, player=player))


def _backdate(event: dict) -> None:
    event["recorded_at"] = "2020-01-01T00:00:00Z"


def _partition(stream) -> int:
    return partition_of(stream, PARTITION_COUNT)


def test_a_checkpoint_states_every_partition_holding_events(url):
    """The checkpoint has a head per partition that holds events, at that partition's
    newest position, and the audit proves it and the stored copy."""
    _history(url)
    key = Ed25519PrivateKey.generate()
    signed = checkpoint(url, key)
    stated = signed.checkpoint
    wallets = {partition_of(wallet_id(player, "EUR"), PARTITION_COUNT) for player in PLAYERS}
    assert stated.partition_count == 256
    assert {head.partition for head in stated.partitions} >= wallets
    assert stated.event_count == sum(head.position for head in stated.partitions)
    report = audited(url, [NamedCheckpoint("file", signed)], key.public_key())
    assert report.passed, problems(report)
    assert [line.split(" (")[0] for line in report.checkpoints_verified] == [
        "file",
        "stored checkpoint 1",
    ]


def test_an_event_rewritten_in_one_partition_is_caught_naming_the_partition(url):
    """A deposit rewritten consistently in one wallet's partition is caught by the kept
    checkpoint, whose finding names that partition."""
    _history(url)
    key = Ed25519PrivateKey.generate()
    signed = checkpoint(url, key)
    wallet = wallet_id("p3", "EUR")
    RawStore(url).edit(wallet, 2, _backdate)
    report = audited(url, [NamedCheckpoint("file", signed)], key.public_key())
    assert "file: the history no longer extends it: at #" in problems(report)
    assert f"partition {partition_of(wallet, PARTITION_COUNT)} of the log holds" in problems(report)


def test_a_continued_checkpoint_reads_only_what_was_written_since(url, monkeypatch):
    """The second checkpoint reads only the partitions written since the first (the one
    player's and the checkpoints' own), names the first, and both verify."""
    _history(url)
    key = Ed25519PrivateKey.generate()
    first = checkpoint(url, key)
    _history(url, players=("p9",))
    read: set[int] = set()
    real = checkpoints.log_digests

    def counting(log, after, until, partition=0):
        read.add(partition)
        return real(log, after, until, partition)

    monkeypatch.setattr(checkpoints, "log_digests", counting)
    second = checkpoint(url, key, first)
    assert read == {_partition(wallet_id("p9", "EUR")), _partition(CHECKPOINT_STREAM_ID)}
    with Ledger(url, currency_scales="ignore") as ledger:
        assert second.checkpoint.event_count == log_size(ledger.log) - 1  # all but itself
    report = audited(url, [], key.public_key())
    assert report.passed, problems(report)
    assert len(report.checkpoints_verified) == 2


def test_a_deleted_row_in_a_partition_is_never_signed_over(url):
    """A partition's positions leave no gap: a row deleted after the previous checkpoint is
    refused by the writer, which names the partition."""
    key = Ed25519PrivateKey.generate()
    _history(url, players=("p1",))
    first = checkpoint(url, key)
    _history(url, players=("p2",))
    RawStore(url).delete(wallet_id("p2", "EUR"), 2)
    partition = partition_of(wallet_id("p2", "EUR"), PARTITION_COUNT)
    with pytest.raises(CheckpointRefused, match=f"partition {partition} of the log holds"):
        checkpoint(url, key, first)


def test_a_single_log_checkpoint_is_not_continued_or_checked_on_the_migrated_copy(schema):
    """After `ledger migrate`, the single log's checkpoint cannot be continued on the copy
    (a new chain starts), a kept file of it is a finding there, and the stored copy of it
    is listed as not checked, not failed."""
    single = with_layout(schema, "single")
    _history(single)
    key = Ed25519PrivateKey.generate()
    old = checkpoint(single, key)
    result = CliRunner().invoke(main, ["migrate", "--database-url", single])
    assert result.exit_code == 0, result.output
    target = with_layout(schema, "partitioned")
    with pytest.raises(CheckpointRefused, match="covers a log of 1 partitions"):
        checkpoint(target, key, old)
    report = audited(target, [NamedCheckpoint("old file", old)], key.public_key())
    assert "old file: it covers a log of 1 partitions" in problems(report)
    assert report.finding_count == 1
    fresh = checkpoint(target, key)
    report = audited(target, [NamedCheckpoint("new file", fresh)], key.public_key())
    assert report.passed, problems(report)
    (skipped,) = report.checkpoints_skipped
    assert skipped.startswith("stored checkpoint 1: it covers a log of 1 partitions")


def test_a_heads_row_added_by_an_insider_is_caught(url):
    """A heads row added (or removed) changes the log's partition count, so every stream
    hashes elsewhere: the engine would find none of its events, and the stored checkpoints
    are no longer where they are looked for. The audit names the misplaced records."""
    _history(url)
    key = Ed25519PrivateKey.generate()
    checkpoint(url, key)
    RawStore(url)._run("", f"INSERT INTO ledger_log_heads VALUES ({PARTITION_COUNT}, 0)")
    report = audited(url, [], key.public_key())
    assert f"of {PARTITION_COUNT + 1}, its stream's is" in problems(report)


def test_a_stored_partitioned_checkpoint_of_another_count_is_a_finding_not_skipped():
    """Only the single log's checkpoints that `ledger migrate` carried over are set aside
    as not checked: a stored partitioned one stating another partition count (no migration
    makes one) fails, as a file would."""
    key = Ed25519PrivateKey.generate()
    trees = {0: checkpoints.Frontier()}
    trees[0].append(b"\x00" * 32)
    stated = checkpoints.partitioned_checkpoint_of(
        trees, [1] * 8, CHECKPOINT_TIME, checkpoints.public_key_hex(key.public_key())
    )
    stored = NamedCheckpoint("stored checkpoint 1", checkpoints.sign(stated, key), stored=True)
    found: list[str] = []
    check = CheckpointCheck([stored], [key.public_key()], found.append, partitions=16)
    assert check.skipped == []
    assert found == [
        "stored checkpoint 1: it covers a log of 8 partitions and this store's has 16 (a log "
        "carried over by `ledger migrate` starts a new chain of checkpoints)"
    ]


def test_a_heads_row_added_under_a_running_writer_is_refused_not_a_crash(url):
    """A partition count that changes while a writer runs is a refusal naming the heads
    table, never a ValueError out of `ledger checkpoint`."""
    _history(url)
    key = Ed25519PrivateKey.generate()
    with Ledger(url, currency_scales="ignore") as ledger:
        RawStore(url)._run("", f"INSERT INTO ledger_log_heads VALUES ({PARTITION_COUNT}, 0)")
        with pytest.raises(CheckpointRefused, match="heads table was changed"):
            write_checkpoint(ledger.log, key, CHECKPOINT_TIME)


def _migrate(single: str, *options: str):
    return CliRunner().invoke(main, ["migrate", "--database-url", single, *options])


def test_migrate_carries_the_chain_of_checkpoints_over(schema, tmp_path):
    """`ledger migrate --signing-key --previous --output` audits the old log against its
    newest kept checkpoint, then signs the copy's first checkpoint naming it; a server's
    directory holding both continues from the copy's."""
    single = with_layout(schema, "single")
    _history(single)
    key_file, old_file, new_file = tmp_path / "k.pem", tmp_path / "old.json", tmp_path / "new.json"
    assert CliRunner().invoke(main, ["checkpoint-key", str(key_file)]).exit_code == 0
    key = load_signing_key(key_file)
    old = checkpoint(single, key)
    write_checkpoint_file(old_file, old)
    anchor = ["--signing-key", str(key_file), "--previous", str(old_file)]
    result = _migrate(single, *anchor, "--output", str(new_file))
    assert result.exit_code == 0, result.output
    first = read_checkpoint_file(new_file)
    assert first.checkpoint.previous == checkpoint_digest(old)
    target = with_layout(schema, "partitioned")
    report = audited(target, [NamedCheckpoint("new", first)], key.public_key())
    assert report.passed, problems(report)
    kept = tmp_path / "kept"
    kept.mkdir()
    for signed in (old, first):
        keep_checkpoint_file(kept, signed)
    assert newest_kept_checkpoint(kept, key.public_key(), 256) == first
    _history(target, players=("p9",))
    assert checkpoint(target, key, first).checkpoint.previous == checkpoint_digest(first)


def test_migrate_refuses_an_old_log_that_no_longer_extends_itscheckpoint(schema, tmp_path):
    """An old log rewritten below its newest kept checkpoint is not copied: the chain
    cannot go on from a checkpoint the history fails."""
    single = with_layout(schema, "single")
    _history(single)
    key_file, old_file = tmp_path / "k.pem", tmp_path / "old.json"
    assert CliRunner().invoke(main, ["checkpoint-key", str(key_file)]).exit_code == 0
    write_checkpoint_file(old_file, checkpoint(single, load_signing_key(key_file)))
    wallet = wallet_id("p2", "EUR")
    RawStore(single).edit(wallet, 2, _backdate)
    result = _migrate(single, "--signing-key", str(key_file), "--previous", str(old_file))
    assert result.exit_code == 1
    assert "fails its audit against the previous checkpoint" in result.output
    with Ledger(with_layout(schema, "partitioned"), currency_scales="ignore") as ledger:
        assert log_size(ledger.log) <= 1  # nothing copied (at most the currencies record)


def test_a_server_directory_of_the_old_layout_only_stops_the_writer(schema, tmp_path):
    """After a migration, a checkpoint directory holding only the single log's checkpoints
    is refused, naming how to carry the chain over, rather than silently starting anew."""
    single = with_layout(schema, "single")
    _history(single)
    key = Ed25519PrivateKey.generate()
    keep_checkpoint_file(tmp_path, checkpoint(single, key))
    with pytest.raises(CheckpointRefused, match="ledger migrate --signing-key"):
        newest_kept_checkpoint(tmp_path, key.public_key(), 256)
    assert newest_kept_checkpoint(tmp_path, key.public_key(), 1) is not None
