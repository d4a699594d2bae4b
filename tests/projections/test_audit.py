"""`ledger audit`: a clean history passes; an edited, deleted or reordered stored event, a
truncated stream or a tampered projection is caught, named, and fails the exit status."""

from click.testing import CliRunner

from ledger.cli.main import main
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from projections.audit import audit
from projections.stores import open_projection_store
from tests.builders import EUR, bet, deposit, win
from tests.conftest import SteppingClock
from tests.integration.raw_store import RawStore


def _small_history(database_url: str) -> None:
    with Ledger(database_url, clock=SteppingClock()) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        ledger.execute(bet("b1", 4 * EUR))
        ledger.execute(win("w1", "b1", 3 * EUR))
        ledger.execute(deposit("d2", 5 * EUR))


def _audit(database_url: str, projections: bool = False):
    with Ledger(database_url) as ledger:
        store = open_projection_store(database_url) if projections else None
        report = audit(ledger.log, store)
        if store is not None:
            store.close()
    return report


def test_a_clean_history_passes_with_its_projections(history):
    """The demo's history audits clean, projections included, with exit status 0."""
    assert CliRunner().invoke(main, ["project", "--database-url", history]).exit_code == 0
    result = CliRunner().invoke(main, ["audit", "--database-url", history])
    assert result.exit_code == 0, result.output
    assert "audit passed" in result.output


def test_an_edited_amount_is_caught_at_the_next_event(database_url):
    """Changing a stored amount breaks the chain at the following event, which is named."""
    _small_history(database_url)
    raw, wallet = RawStore(database_url), wallet_id("p1", "EUR")
    state = raw.state(wallet, 3)  # the bet
    raw.set_state(
        wallet,
        3,
        state.replace(b"-4000000", b"-1000000").replace(
            b'"cash_stake":4000000', b'"cash_stake":1000000'
        ),
    )
    report = _audit(database_url)
    assert not report.passed
    first = report.findings[0]
    assert first.version in (3, 4) and first.stream == wallet


def test_a_deleted_event_is_caught_as_a_version_gap(database_url):
    """Removing an event leaves a gap the audit names."""
    _small_history(database_url)
    RawStore(database_url).delete(wallet_id("p1", "EUR"), 3)
    report = _audit(database_url)
    assert any("version 4 follows 2" in f.problem for f in report.findings)


def test_reordered_events_are_caught(database_url):
    """Swapping two stored events' contents is caught: each holds another position."""
    _small_history(database_url)
    raw, wallet = RawStore(database_url), wallet_id("p1", "EUR")
    third, fourth = raw.state(wallet, 3), raw.state(wallet, 4)
    raw.set_state(wallet, 3, fourth)
    raw.set_state(wallet, 4, third)
    report = _audit(database_url)
    assert not report.passed
    assert report.findings[0].version == 3


def test_a_truncated_stream_is_caught_by_the_idempotency_records(database_url):
    """Deleting a stream's newest event leaves a valid shorter chain, but its record disagrees."""
    _small_history(database_url)
    RawStore(database_url).delete(wallet_id("p1", "EUR"), 5)
    report = _audit(database_url)
    assert any("record says wallet at v5" in f.problem for f in report.findings)


def test_a_tampered_projection_is_caught(database_url):
    """A read model that disagrees with the replay fails the audit, naming the account."""
    _small_history(database_url)
    assert CliRunner().invoke(main, ["project", "--database-url", database_url]).exit_code == 0
    store = open_projection_store(database_url)
    if database_url.startswith("sqlite"):
        store.connection.execute(
            "UPDATE account_balances SET balance = '1' WHERE account LIKE 'player:p1:cash%'"
        )
    else:
        store.connection.execute(
            "UPDATE account_balances SET balance = 1 WHERE account LIKE 'player:p1:cash%'"
        )
    store.close()
    result = CliRunner().invoke(main, ["audit", "--database-url", database_url])
    assert result.exit_code == 1
    assert "projected balance of player:p1:cash:EUR is 1" in result.output


def test_audit_without_projections_does_not_claim_to_have_compared_them(database_url):
    """With --no-projections the success line says the read models were not compared."""
    _small_history(database_url)
    result = CliRunner().invoke(main, ["audit", "--database-url", database_url, "--no-projections"])
    assert result.exit_code == 0, result.output
    assert "(projections not compared)" in result.output
    assert "projections equal the replay" not in result.output


def test_audit_fails_with_the_first_offending_event_named(database_url):
    """The CLI exits 1 and names the first offending event's position, stream and version."""
    _small_history(database_url)
    RawStore(database_url).delete(wallet_id("p1", "EUR"), 3)
    result = CliRunner().invoke(main, ["audit", "--database-url", database_url, "--no-projections"])
    assert result.exit_code == 1
    assert f"({wallet_id('p1', 'EUR')} v4): version 4 follows 2" in result.output


def test_a_refusal_for_a_wallet_opened_meanwhile_by_another_writer_passes(database_url):
    """A bet refused WRONG_CURRENCY on a missing wallet, whose record commits after another
    process's deposit opened the wallet, is a legitimate history: the refusal needed no write
    and is ordered at its decision."""
    with Ledger(database_url) as first, Ledger(database_url) as second:
        steps, answer = first._attempt_steps([bet("b1", EUR)]), None
        while True:
            try:
                function, args = steps.send(answer)
            except StopIteration as done:
                [result] = done.value
                break
            if function == first.log.append:
                second.execute(deposit("d1", 10 * EUR))  # commits first
            answer = function(*args)
        assert result.outcome is Outcome.WRONG_CURRENCY
    report = _audit(database_url)
    assert report.passed, [str(finding) for finding in report.findings]


def test_the_row_count_covers_the_log_up_to_where_the_audit_read(database_url):
    """Rows committed after the audit's last page (a live store) are not counted against it:
    the count stops at the last position read."""
    _small_history(database_url)
    with Ledger(database_url) as ledger:
        log = ledger.log
        last = log.heads()
        rows, misspelled = log.stored_rows(last)
        ledger.execute(deposit("late", EUR))
        assert log.stored_rows(last) == (rows, misspelled) and misspelled == 0
        assert log.stored_rows(log.heads())[0] > rows
        assert audit(log, None).passed
