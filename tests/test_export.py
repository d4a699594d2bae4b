"""The journal export, checked by the real hledger: it parses, it balances, and its balances
equal the engine's own fold of the stored events, exactly, account by account.

hledger comes from the Debian package (`apt-get install -y hledger`, done by `.ci/run`).
Without it these tests skip with the reason, except under CI=true, where they fail instead:
CI must never pass by silently skipping the only check made by a tool nobody here wrote.
"""

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
from collections import defaultdict
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.cli.summary import PLAYER_ACCOUNT_KINDS, stored_events, summarize
from ledger.core import commands as c
from ledger.core.events import WalletEvent
from ledger.core.outcomes import Outcome
from ledger.service.application import Ledger
from projections.export import ExportStats, write_ledger_journal
from projections.export_cli import export_command

IS_CI = os.environ.get("CI", "").lower() == "true"
TINY_LOAD = ("--players", "12", "--rounds", "4")
HLEDGER_TIMEOUT_S = 60
WEI_PER_ETH = 10**18

Balances = dict[tuple[str, str], Decimal]  # (account, commodity) → balance in major units


def hledger_path() -> str:
    """The hledger binary; a skip with the reason when it is missing, a failure under CI."""
    path = shutil.which("hledger")
    if path is None:
        reason = "hledger is not installed (apt-get install -y hledger)"
        if IS_CI:
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return path


def hledger(journal: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [hledger_path(), "-f", str(journal), *arguments]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=HLEDGER_TIMEOUT_S, check=False
    )


def hledger_balances(journal: Path) -> tuple[Balances, set[str]]:
    """Every account's balance per commodity as hledger reports it, and every account listed.

    `--empty` lists zero-balance accounts too, so an account missing from the export shows.
    """
    result = hledger(journal, "balance", "--flat", "--empty", "--no-total", "-O", "csv")
    assert result.returncode == 0, result.stderr
    balances: Balances = {}
    listed: set[str] = set()
    for row in csv.DictReader(io.StringIO(result.stdout)):
        listed.add(row["account"])
        for amount in row["balance"].split(", "):
            number, _, symbol = amount.partition(" ")
            if Decimal(number) != 0:
                balances[(row["account"], symbol.strip('"'))] = Decimal(number)
    return balances, listed


def engine_balances(ledger: Ledger) -> tuple[Balances, set[str]]:
    """Every account's balance per currency, folded from the stored events' postings."""
    minor: defaultdict[tuple[str, str], int] = defaultdict(int)
    for event in stored_events(ledger):
        if isinstance(event, WalletEvent):
            for posting in event.postings:
                minor[(posting.account, event.currency)] += posting.amount
    balances: Balances = {}
    for (account, code), amount in minor.items():
        scale = ledger.rules.currencies.get(code).scale
        if amount != 0:
            balances[(account, code)] = Decimal(amount).scaleb(-scale)
    return balances, {account for account, _ in minor}


def export_to(ledger: Ledger, journal: Path) -> ExportStats:
    with journal.open("w", encoding="utf-8", newline="\n") as out:
        return write_ledger_journal(ledger, out)


def assert_hledger_accepts(journal: Path) -> None:
    for checks in ((), ("accounts", "commodities")):
        result = hledger(journal, "check", *checks)
        assert result.returncode == 0, f"hledger check {' '.join(checks)}: {result.stderr}"


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    """A store filled by `ledger demo` with a small load."""
    path = tmp_path_factory.mktemp("demo") / "ledger.sqlite3"
    url = f"sqlite:///{path}"
    result = CliRunner().invoke(main, ["demo", "--database-url", url, *TINY_LOAD])
    assert result.exit_code == 0, result.output
    return url


def deposit(key: str, player: str, currency: str, amount: int) -> c.Deposit:
    rail, rail_id = ("chain", "ethereum") if currency == "ETH" else ("psp", "stripe")
    return c.Deposit(
        idempotency_key=key,
        player_id=player,
        currency=currency,
        amount=amount,
        rail=rail,
        rail_id=rail_id,
    )


def execute_all(ledger: Ledger, commands: list[c.Command]) -> None:
    for command in commands:
        assert ledger.execute(command).outcome == Outcome.OK, command


def test_hledger_checks_the_export_of_a_demo_history(demo_url, tmp_path):
    """hledger accepts a simulated history's export, every account and commodity declared."""
    journal = tmp_path / "demo.journal"
    with Ledger(demo_url) as ledger:
        stats = export_to(ledger, journal)
    assert stats.transactions > 100
    assert_hledger_accepts(journal)


def test_hledger_balances_equal_the_engine_fold_exactly(demo_url, tmp_path):
    """Every account's balance in hledger equals the engine's fold of postings, to the last unit."""
    journal = tmp_path / "demo.journal"
    with Ledger(demo_url) as ledger:
        export_to(ledger, journal)
        expected, expected_accounts = engine_balances(ledger)
        summary = summarize(ledger)
        registry = ledger.rules.currencies
    reported, listed = hledger_balances(journal)
    assert reported == expected
    assert listed == expected_accounts
    assert summary.is_sound
    for totals in summary.currencies:
        scale = registry.get(totals.currency).scale
        for account, balance in totals.accounts.items():
            assert reported.get((account, totals.currency), 0) == Decimal(balance).scaleb(-scale)
        for kind in PLAYER_ACCOUNT_KINDS:
            assert player_total(reported, totals.currency, kind) == Decimal(
                totals.players[kind]
            ).scaleb(-scale)


def player_total(balances: Balances, currency: str, kind: str) -> Decimal:
    """The sum of every player's account of one kind ("cash", "bonus", "held") in currency."""
    return sum(
        (
            amount
            for (account, code), amount in balances.items()
            if code == currency and account.startswith("player:") and account.split(":")[2] == kind
        ),
        Decimal(0),
    )


def test_export_stats_count_what_was_written(demo_url, tmp_path):
    """The stats count one transaction per wallet event with postings; each currency nets zero."""
    with Ledger(demo_url) as ledger:
        stats = export_to(ledger, tmp_path / "demo.journal")
        events = list(stored_events(ledger))
    moving = [e for e in events if isinstance(e, WalletEvent) and e.postings]
    assert stats.events_read == len(events)
    assert stats.transactions == len(moving)
    assert stats.postings == sum(len(event.postings) for event in moving)
    assert sum(currency.transactions for currency in stats.currencies) == stats.transactions
    for currency in stats.currencies:
        debits = sum(
            posting.amount
            for event in moving
            if event.currency == currency.currency
            for posting in event.postings
            if posting.amount > 0
        )
        assert (currency.debits_minor, currency.net_minor) == (debits, 0)


def test_an_eth_amount_over_two_to_the_64_wei_survives_exactly(tmp_path):
    """An 18-decimal ETH amount above 2**64 wei, and one wei, come back from hledger unchanged."""
    large_wei = 2**70 + 123_456_789_012_345_678_901  # 1180.714... ETH: far above 2**64 wei
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    journal = tmp_path / "eth.journal"
    with Ledger(url) as ledger:
        execute_all(
            ledger,
            [
                deposit("large", "whale", "ETH", large_wei),
                deposit("tiny", "minnow", "ETH", 1),
                deposit("euro", "p1", "EUR", 1_234_000),  # 1.234 EUR: a decimal, never a grouping
            ],
        )
        export_to(ledger, journal)
    assert_hledger_accepts(journal)
    reported, _ = hledger_balances(journal)
    assert reported[("player:whale:cash:ETH", "ETH")] == Decimal(large_wei).scaleb(-18)
    assert reported[("player:whale:cash:ETH", "ETH")] > Decimal(2**64) / WEI_PER_ETH
    assert reported[("player:minnow:cash:ETH", "ETH")] == Decimal("0.000000000000000001")
    assert reported[("chain:ethereum:ETH", "ETH")] == -Decimal(large_wei + 1).scaleb(-18)
    assert reported[("player:p1:cash:EUR", "EUR")] == Decimal("1.234")
    text = journal.read_text()
    assert "    player:minnow:cash:ETH  0.000000000000000001 ETH\n" in text
    assert "    format 1.000000000000000000 ETH\n" in text


def test_keys_that_would_end_a_description_are_encoded(tmp_path):
    """An idempotency key holding ';', '|' or '%' is percent-encoded, so hledger reads it whole."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    journal = tmp_path / "keys.journal"
    with Ledger(url) as ledger:
        execute_all(ledger, [deposit("a;b|c%d", "p1", "EUR", 5_000_000)])
        export_to(ledger, journal)
    assert "* Deposited a%3Bb%7Cc%25d\n" in journal.read_text()
    assert_hledger_accepts(journal)
    result = hledger(journal, "descriptions")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Deposited a%3Bb%7Cc%25d"]


def test_hledger_refuses_an_export_of_a_tampered_journal(demo_url, tmp_path):
    """An edited posting is exported as stored, so hledger, not the exporter, refuses it."""
    database = tmp_path / "tampered.sqlite3"
    shutil.copyfile(demo_url.removeprefix("sqlite:///"), database)
    add_one_minor_unit_to_the_first_deposit(database)
    journal = tmp_path / "tampered.journal"
    with Ledger(f"sqlite:///{database}") as ledger:
        stats = export_to(ledger, journal)
    assert [currency.net_minor for currency in stats.currencies if currency.net_minor] == [1]
    result = hledger(journal, "check")
    assert result.returncode != 0
    assert "could not balance" in result.stderr


def add_one_minor_unit_to_the_first_deposit(path: Path) -> None:
    """Edits the first deposit's player posting in place, behind the ledger's back."""
    with closing(sqlite3.connect(path)) as connection, connection:
        rowid, state = connection.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'Deposited' ORDER BY rowid"
        ).fetchone()
        event = json.loads(state)
        for posting in event["postings"]:
            if posting[0].startswith("player:"):
                posting[1] += 1
        edited = json.dumps(event, separators=(",", ":")).encode()
        connection.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (edited, rowid))


def test_cli_writes_the_journal_to_a_file(demo_url, tmp_path):
    """`export -o FILE` writes a journal hledger accepts and reports its counts on stderr."""
    journal = tmp_path / "out" / "ledger.journal"
    journal.parent.mkdir()
    result = CliRunner().invoke(
        export_command, ["--format", "ledger", "--database-url", demo_url, "-o", str(journal)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("exported ")
    assert [path.name for path in journal.parent.iterdir()] == ["ledger.journal"]
    assert_hledger_accepts(journal)


def test_cli_writes_the_journal_to_standard_output(demo_url, tmp_path):
    """Without -o the journal goes to stdout alone, identical to the file export."""
    result = CliRunner().invoke(export_command, ["--database-url", demo_url])
    assert result.exit_code == 0, result.output
    with Ledger(demo_url) as ledger:
        export_to(ledger, tmp_path / "file.journal")
    assert result.stdout == (tmp_path / "file.journal").read_text()
    assert "exported " not in result.stdout


def test_cli_refuses_a_bad_database_url_with_exit_status_2(tmp_path):
    """A malformed URL or a missing SQLite file is a usage error naming --database-url."""
    for url in ("mysql://nowhere/db", f"sqlite:///{tmp_path}/missing.sqlite3"):
        result = CliRunner().invoke(export_command, ["--database-url", url])
        assert result.exit_code == 2, result.output
        assert "'--database-url'" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "missing.sqlite3").exists()


def test_cli_reports_an_unreadable_store_with_exit_status_1(tmp_path):
    """A file that is not a database is a one-line store failure, and no output file is left."""
    not_a_store = tmp_path / "not-a-store.sqlite3"
    not_a_store.write_text("not a database\n" * 100)
    journal = tmp_path / "ledger.journal"
    result = CliRunner().invoke(
        export_command, ["--database-url", f"sqlite:///{not_a_store}", "-o", str(journal)]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: the store at ")
    assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [not_a_store]


def test_cli_refuses_an_unknown_format_with_exit_status_2(demo_url):
    """Only the ledger format exists; asking for another is a usage error."""
    result = CliRunner().invoke(export_command, ["--format", "csv", "--database-url", demo_url])
    assert result.exit_code == 2
    assert "--format" in result.output
