"""What an insider with write access to the database can do, and how the audit catches it:
records deleted or edited, events forged, the newest events truncated or rewritten together
with their records (caught by a signed checkpoint), times changed. Each case runs on SQLite
and PostgreSQL."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.cli.main import main
from ledger.core import events as e
from ledger.core.chain import digest, encode_event
from ledger.core.checkpoint import checkpoint_digest
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.checkpoints import CheckpointRefused, write_checkpoint_file
from ledger.service.wallets import key_record_id, wallet_id
from projections.checkpoint_check import NamedCheckpoint
from tests.builders import EUR, bet, deposit, win
from tests.conftest import SteppingClock
from tests.integration.raw_store import RawStore
from tests.projections.anchoring import audited, checkpoint, problems

WALLET = wallet_id("p1", "EUR")


def _history(database_url: str) -> None:
    """Six commands on p1's wallet (v1 opens it): d2 is v5, the refused bet b2 v6 (a
    CommandRefused), the last deposit d3 v7."""
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        for command in (
            deposit("d1", 10 * EUR),
            bet("b1", 4 * EUR),
            win("w1", "b1", 3 * EUR),
            deposit("d2", 5 * EUR),
            bet("b2", 100 * EUR, round_id="r2"),
            deposit("d3", EUR),
        ):
            ledger.execute(command)


def _record(key: str, scope: str = "client"):
    return key_record_id(scope, key)


def test_a_deleted_record_is_caught_and_its_resend_applies_again(database_url):
    """Deleting a deposit's record lets its resend credit twice; the audit names the orphan."""
    _history(database_url)
    RawStore(database_url).delete(_record("d2"), 1)
    with Ledger(database_url) as ledger:
        assert ledger.execute(deposit("d2", 5 * EUR)).outcome is Outcome.OK  # credited again
    report = audited(database_url)
    assert not report.passed
    orphan = report.findings[0]
    assert (orphan.stream, orphan.version) == (WALLET, 5)
    assert "belongs to no idempotency record" in orphan.problem


def test_a_deleted_refusal_record_is_caught(database_url):
    """A refusal's record removed (so its resend would be decided anew) leaves its
    chained CommandRefused without a record."""
    _history(database_url)
    RawStore(database_url).delete(_record("b2", "provider:hub88"), 1)
    findings = audited(database_url).findings
    assert [(f.stream, f.version) for f in findings] == [(WALLET, 6)]


def test_a_forged_event_with_a_valid_hash_is_caught(database_url):
    """An appended deposit that chains correctly but has no record is named by the audit."""
    _history(database_url)
    with Ledger(database_url) as ledger:
        head = ledger.wallet("p1", "EUR")
        forged = e.Deposited(
            originator_id=WALLET,
            originator_version=head.version + 1,
            recorded_at=datetime(2026, 6, 1, tzinfo=UTC),
            previous_hash=head.head_hash,
            journal_id=ledger.new_id(),
            key="forged",
            currency="EUR",
            amount=500 * EUR,
            rail="psp",
            rail_id="stripe",
            postings=(
                e.Posting("psp:stripe:EUR", -500 * EUR),
                e.Posting("player:p1:cash:EUR", 500 * EUR),
            ),
        )
        ledger.log.append([forged])
        assert ledger.wallet("p1", "EUR").cash == 515 * EUR  # the engine takes it as valid
    report = audited(database_url)
    assert [(f.version, f.problem) for f in report.findings] == [
        (8, "event belongs to no idempotency record")
    ]


@pytest.mark.parametrize("said", ["LIMIT_EXCEEDED", "OK"])
def test_a_refusals_edited_outcome_is_caught(database_url, said):
    """A rejected bet's record changed to another outcome disagrees with its chained refusal."""
    _history(database_url)

    def say(record: dict) -> None:
        record["outcome"] = said

    RawStore(database_url).edit(_record("b2", "provider:hub88"), 1, say)
    found = problems(audited(database_url))
    assert f"record says Bet {said}, its chained refusal Bet INSUFFICIENT_FUNDS" in found


def test_an_edited_time_is_caught_on_an_event_and_on_a_record(database_url):
    """A changed recorded_at breaks the chain in the middle, and differs from the record's
    (or the record's from its events') at the newest event."""
    _history(database_url)
    raw = RawStore(database_url)

    def backdate(event: dict) -> None:
        event["recorded_at"] = "2025-01-01T00:00:00Z"

    raw.edit(WALLET, 2, backdate)
    raw.edit(WALLET, 7, backdate)
    raw.edit(_record("d1"), 1, backdate)
    found = problems(audited(database_url))
    assert "hash chain broken" in found  # v3 no longer follows the edited v2
    assert found.count("record's time") >= 2  # d3's record against its event, d1's record


def _truncate_newest(database_url: str) -> None:
    """Removes d3: the wallet's newest event and its record, a valid shorter history."""
    raw = RawStore(database_url)
    raw.delete(WALLET, 7)
    raw.delete(_record("d3"), 1)


def test_a_truncated_newest_command_passes_without_a_checkpoint_and_fails_with_one(database_url):
    """Removing the newest event with its record leaves nothing for chains and records to
    see; the checkpoint, kept as a file, still catches it even with the stored one gone."""
    _history(database_url)
    key = Ed25519PrivateKey.generate()
    signed = checkpoint(database_url, key)
    _truncate_newest(database_url)
    RawStore(database_url).delete(signed_stream(), 1)  # the stored checkpoint too
    assert audited(database_url).passed
    report = audited(database_url, [NamedCheckpoint("file", signed)], key.public_key())
    assert not report.passed
    assert "before the checkpoint's position" in problems(report)
    assert "history truncated" in problems(report)


def signed_stream():
    from ledger.service.checkpoints import CHECKPOINT_STREAM_ID

    return CHECKPOINT_STREAM_ID


def test_a_rewritten_newest_command_is_caught_by_the_storedcheckpoint(database_url):
    """The newest deposit and its record rewritten consistently (a bigger amount, matching
    balance-after) fool chains and records, not the checkpoint stored in the log."""
    _history(database_url)
    checkpoint(database_url, Ed25519PrivateKey.generate())
    raw = RawStore(database_url)

    def inflate(event: dict) -> None:
        event["amount"] = 1000 * EUR
        event["postings"] = [["psp:stripe:EUR", -1000 * EUR], ["player:p1:cash:EUR", 1000 * EUR]]

    def inflate_record(record: dict) -> None:
        record["cash"] += 999 * EUR

    raw.edit(WALLET, 7, inflate)
    raw.edit(_record("d3"), 1, inflate_record)
    report = audited(database_url)
    assert [f.problem.split(":")[0] for f in report.findings] == ["stored checkpoint 1"]


def test_checkpoints_continue_and_every_stored_one_is_checked(database_url):
    """A second checkpoint continues from the first (naming it); the audit verifies both,
    and a history appended after them is not a finding."""
    _history(database_url)
    key = Ed25519PrivateKey.generate()
    first = checkpoint(database_url, key)
    assert checkpoint(database_url, key, first) is None  # nothing new but the checkpoint
    with Ledger(database_url) as ledger:
        ledger.execute(deposit("d4", EUR))
    second = checkpoint(database_url, key, first)
    assert second.checkpoint.event_count > first.checkpoint.event_count
    assert second.checkpoint.previous == checkpoint_digest(first)
    report = audited(database_url, [], key.public_key())
    assert report.passed, problems(report)
    assert report.checkpoints_verified == [
        f"stored checkpoint 1 (#{first.checkpoint.position}, read the log)",
        f"stored checkpoint 2 (#{second.checkpoint.position}, continues "
        f"{checkpoint_digest(first)[:16]}…)",
    ]


def test_a_checkpoint_continued_from_a_kept_one_never_signs_over_a_rewritten_past(database_url):
    """With the stored checkpoint and the newest command deleted, the writer refuses a log
    shorter than its previous checkpoint; once the log is long again, the new checkpoint
    carries the true past from the previous one's frontier, so the audit given only the new
    one still fails. A partitioned log's writer goes on refusing the gap left behind."""
    _history(database_url)
    key = Ed25519PrivateKey.generate()
    kept = checkpoint(database_url, key)
    _truncate_newest(database_url)
    RawStore(database_url).delete(signed_stream(), 1)
    with pytest.raises(CheckpointRefused, match="it has been truncated"):
        checkpoint(database_url, key, kept)
    with Ledger(database_url) as ledger:
        for n in range(3):
            ledger.execute(deposit(f"refill-{n}", EUR))
        partitions = ledger.log.partitions
    if partitions > 1:  # the deleted checkpoint's position stays a gap in its partition
        with pytest.raises(CheckpointRefused, match="rows were deleted"):
            checkpoint(database_url, key, kept)
        return
    newest = checkpoint(database_url, key, kept)
    report = audited(database_url, [NamedCheckpoint("newest file", newest)], key.public_key())
    assert "newest file: the history no longer extends it" in problems(report)


def test_the_cli_proves_a_kept_checkpoint_and_fails_a_truncated_history(database_url, tmp_path):
    """`ledger checkpoint --output` then `ledger audit --checkpoint --verify-key` passes, and
    exits 1 naming the checkpoint once the newest command is truncated."""
    _history(database_url)
    key, kept = tmp_path / "signing.pem", tmp_path / "kept.json"
    runner = CliRunner()
    assert runner.invoke(main, ["checkpoint-key", str(key)]).exit_code == 0
    made = runner.invoke(
        main,
        [
            "checkpoint",
            "--database-url",
            database_url,
            "--signing-key",
            str(key),
            "--output",
            str(kept),
        ],
    )
    assert made.exit_code == 0, made.output
    arguments = [
        "audit",
        "--database-url",
        database_url,
        "--no-projections",
        "--checkpoint",
        str(kept),
        "--verify-key",
        f"{key}.pub",
    ]
    passed = runner.invoke(main, arguments)
    assert passed.exit_code == 0, passed.output
    assert f"the history extends checkpoint file {kept}" in passed.output
    _truncate_newest(database_url)
    failed = runner.invoke(main, arguments)
    assert failed.exit_code == 1
    # The single log's tail moved under the checkpoint; a partition's ends before it.
    finding = failed.output.split(f"checkpoint file {kept}: ")[1]
    assert finding.startswith(("the history no longer extends it", "partition ")), finding


def test_a_checkpoint_file_signed_by_another_key_or_edited_is_refused(database_url, tmp_path):
    """Against the trusted key, a file signed by another key is a finding; an edited file's
    signature does not verify."""
    _history(database_url)
    trusted, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    foreign = checkpoint(database_url, other)
    report = audited(database_url, [NamedCheckpoint("file", foreign)], trusted.public_key())
    assert "not a trusted key" in problems(report)
    path = tmp_path / "edited.json"
    write_checkpoint_file(path, foreign)
    path.write_text(path.read_text().replace('"position": ', '"position": 1'))
    result = CliRunner().invoke(
        main,
        ["audit", "--database-url", database_url, "--no-projections", "--checkpoint", str(path)],
    )
    assert result.exit_code == 1
    assert "its signature does not verify" in result.output


def test_refusal_events_hash_like_any_event():
    """A CommandRefused digests over its canonical bytes like every stored event."""
    refused = e.CommandRefused(
        originator_id=WALLET,
        originator_version=2,
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        previous_hash="0" * 64,
        journal_id=WALLET,
        key="b",
        currency="EUR",
        command_type="Bet",
        outcome="INSUFFICIENT_FUNDS",
    )
    assert len(digest(encode_event(refused))) == 64


def test_a_record_moved_where_the_engine_cannot_find_it_is_caught(database_url):
    """A record rewritten under another stream id would let its resend apply again."""
    _history(database_url)
    raw, moved = RawStore(database_url), uuid4()

    def move(record: dict) -> None:
        record["originator_id"] = str(moved)

    raw.edit(_record("d2"), 1, move)
    raw._run(
        "UPDATE stored_events SET originator_id = ? WHERE originator_id = ?",
        "UPDATE ledger_events SET originator_id = %s WHERE originator_id = %s",
        (moved, _record("d2")),
    )
    assert "record is not stored in the stream of its scope and key" in problems(
        audited(database_url)
    )


def test_a_row_stored_before_the_first_position_is_caught(database_url):
    """A forged, chained deposit at position 0 (which the engine folds by stream but no
    follower of the log reads) is reported."""
    _history(database_url)
    with Ledger(database_url) as ledger:
        head = ledger.wallet("p1", "EUR")
        forged = e.Deposited(
            originator_id=WALLET,
            originator_version=head.version + 1,
            recorded_at=datetime(2026, 6, 1, tzinfo=UTC),
            previous_hash=head.head_hash,
            journal_id=uuid4(),
            key="forged",
            currency="EUR",
            amount=500 * EUR,
            rail="psp",
            rail_id="stripe",
            postings=(
                e.Posting("psp:stripe:EUR", -500 * EUR),
                e.Posting("player:p1:cash:EUR", 500 * EUR),
            ),
        )
    RawStore(database_url).insert_at(
        0, WALLET, forged.originator_version, "Deposited", encode_event(forged)
    )
    found = problems(audited(database_url))
    assert "stored at position #0, before the log's first position" in found


def test_a_stream_id_spelled_so_the_engine_cannot_find_it_is_caught(tmp_path):
    """SQLite compares ids as text: an upper-cased id hides a bet from the engine (its stake
    comes back), and the audit names the spelling, checkpoint or not."""
    url = f"sqlite:///{tmp_path}/respelled.sqlite3"
    _history(url)
    RawStore(url).respell(WALLET, 3)
    assert "not as the engine spells it" in problems(audited(url))


def test_a_record_with_its_player_blanked_is_caught(database_url):
    """Blanking a record's player no longer skips its balance-after check."""
    _history(database_url)

    def blank(record: dict) -> None:
        record["player_id"], record["cash"] = "", 1_000_000 * EUR

    RawStore(database_url).edit(_record("d1"), 1, blank)
    assert "record's wallet is not the wallet of player ''" in problems(audited(database_url))


def test_a_success_relabelled_as_a_refusal_is_caught(database_url):
    """A CommandRefused appended after a deposit's own event (its money kept) is refused:
    before a refusal, only a bonus expiry may come."""
    _history(database_url)
    with Ledger(database_url) as ledger:
        head, newest = ledger.wallet("p1", "EUR"), ledger.wallet_events(WALLET)[-1]
    refusal = e.CommandRefused(
        originator_id=WALLET,
        originator_version=head.version + 1,
        recorded_at=newest.recorded_at,
        previous_hash=head.head_hash,
        journal_id=uuid4(),
        key="d3",
        currency="EUR",
        command_type="Deposit",
        outcome="LIMIT_EXCEEDED",
    )
    raw = RawStore(database_url)
    raw.insert_at(1000, WALLET, refusal.originator_version, "CommandRefused", encode_event(refusal))

    def relabel(record: dict) -> None:
        record.update(outcome="LIMIT_EXCEEDED", journal_id=None, wallet_version_last=8)

    raw.edit(_record("d3"), 1, relabel)
    raw._run(
        "UPDATE stored_events SET rowid = 1001 WHERE originator_id = ?",
        "UPDATE ledger_events SET notification_id = 1001 WHERE originator_id = %s",
        (_record("d3"),),
    )
    assert "a refusal after events that are not a bonus expiry" in problems(audited(database_url))


def test_a_foreign_record_type_in_a_wallet_stream_is_caught(database_url):
    """A CurrenciesRecorded stored as a wallet's next version (which would freeze the wallet)
    is reported, not skipped."""
    _history(database_url)
    foreign = e.CurrenciesRecorded(
        originator_id=WALLET,
        originator_version=8,
        recorded_at=datetime(2026, 6, 1, tzinfo=UTC),
        currencies=(),
    )
    RawStore(database_url).insert_at(1000, WALLET, 8, "CurrenciesRecorded", encode_event(foreign))
    assert "a CurrenciesRecorded outside its own stream" in problems(audited(database_url))
