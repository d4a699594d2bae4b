"""`ledger demo` end to end through click's CliRunner, with a tiny load on a real store."""

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner, Result

from ledger.cli.demo import CURRENCIES
from ledger.cli.main import main
from ledger.cli.summary import stored_events
from ledger.core.events import Deposited
from ledger.service.application import Ledger
from tests.builders import EUR, deposit
from tests.conftest import PG_ADMIN_URL

TINY_LOAD = ("--players", "12", "--rounds", "4")


def run_demo(database_url: str, *options: str) -> Result:
    return CliRunner().invoke(main, ["demo", "--database-url", database_url, *TINY_LOAD, *options])


def plain_output(result: Result) -> str:
    """The output without terminal styling, should the environment force colour on."""
    return click.unstyle(result.output)


def outcome_rows(output: str) -> set[tuple[str, str]]:
    """The (command, outcome) pairs of the outcomes table."""
    rows = set()
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 3 and cells[2].isdigit():
            rows.add((cells[0], cells[1]))
    return rows


def without_timing(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if not line.startswith("elapsed "))


def add_one_minor_unit_to_a_deposit(path: Path) -> None:
    """Edits the first EUR deposit's player posting in place, behind the ledger's back."""
    with closing(sqlite3.connect(path)) as connection, connection:
        rows = connection.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'Deposited' ORDER BY rowid"
        ).fetchall()
        rowid, event = next(
            (rowid, event)
            for rowid, event in ((r, json.loads(s)) for r, s in rows)
            if event["currency"] == "EUR"
        )
        for posting in event["postings"]:
            if posting[0].startswith("player:"):
                posting[1] += 1
        state = json.dumps(event, separators=(",", ":")).encode()
        connection.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, rowid))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/demo.sqlite3"


def test_demo_balances_every_currency(database_url):
    """The demo exits 0 and each of its currencies' accounts sums to exactly zero."""
    result = run_demo(database_url)
    output = plain_output(result)
    assert result.exit_code == 0, output
    for code in CURRENCIES:
        assert f"{code} sum = 0 ✓" in output
    assert "✗" not in output


def test_demo_shows_scripted_outcomes(sqlite_url):
    """Retries, a chargeback, a deposit limit and a stray currency get their outcomes."""
    result = run_demo(sqlite_url)
    assert result.exit_code == 0, result.output
    rows = outcome_rows(plain_output(result))
    assert ("Deposit", "DUPLICATE") in rows
    assert ("Deposit", "LIMIT_EXCEEDED") in rows
    assert ("ReverseDeposit", "OK") in rows
    assert ("Bet", "NEGATIVE_BALANCE") in rows
    assert ("RequestWithdrawal", "NEGATIVE_BALANCE") in rows
    assert ("Bet", "WRONG_CURRENCY") in rows
    assert ("Rollback", "ALREADY_SETTLED") in rows


def test_same_seed_gives_same_run(sqlite_url):
    """Two fresh runs with one seed send the same commands and end with the same totals."""
    first, second = run_demo(sqlite_url), run_demo(sqlite_url)
    assert first.exit_code == second.exit_code == 0, second.output
    assert ("Deposit", "OK") in outcome_rows(plain_output(second))  # --fresh started over
    assert without_timing(plain_output(first)) == without_timing(plain_output(second))


def test_other_seed_gives_other_totals(sqlite_url, tmp_path):
    """The seed drives the simulation: another seed ends with other totals."""
    other_url = f"sqlite:///{tmp_path}/other.sqlite3"
    first, other = run_demo(sqlite_url), run_demo(other_url, "--seed", "8")
    assert first.exit_code == other.exit_code == 0, other.output
    first_totals = plain_output(first).partition("folded")[2]
    other_totals = plain_output(other).partition("folded")[2]
    assert first_totals != other_totals


def test_rerun_without_fresh_replays_every_command(sqlite_url):
    """Appending the same seed again resends identical commands: all replays, same totals."""
    first = run_demo(sqlite_url)
    again = run_demo(sqlite_url, "--no-fresh")
    assert first.exit_code == again.exit_code == 0, again.output
    rows = outcome_rows(plain_output(again))
    assert rows and all(outcome != "OK" for _, outcome in rows)
    assert plain_output(first).partition("folded")[2] == plain_output(again).partition("folded")[2]


def test_demo_stores_eth_amounts_beyond_64_bits(sqlite_url):
    """A whale's ETH deposit above 2**64 wei is stored and read back exactly."""
    result = run_demo(sqlite_url)
    assert result.exit_code == 0, result.output
    with Ledger(sqlite_url) as ledger:
        eth_deposits = [
            event.amount
            for event in stored_events(ledger)
            if isinstance(event, Deposited) and event.currency == "ETH"
        ]
    assert max(eth_deposits) > 2**64


def test_tampered_store_fails_loudly(sqlite_url, tmp_path):
    """An edited posting in the store is named in the report, and the run exits 1."""
    assert run_demo(sqlite_url).exit_code == 0
    add_one_minor_unit_to_a_deposit(tmp_path / "demo.sqlite3")
    result = run_demo(sqlite_url, "--no-fresh", "--seed", "8")
    output = plain_output(result)
    assert result.exit_code == 1, output
    assert "EUR sum = 0.000001 ✗" in output
    assert "postings do not sum to zero" in output
    assert "previous_hash mismatch" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("bad_url", ["mysql://x", "sqlite:///"])
def test_bad_database_url_is_a_usage_error(bad_url):
    """A database URL the engine cannot use exits 2 with a message naming database_url."""
    result = run_demo(bad_url)
    assert result.exit_code == 2
    assert "database_url" in result.output
    assert "Traceback" not in result.output


def test_unusable_store_is_a_one_line_error(tmp_path):
    """A SQLite file in a missing directory fails with one line naming the store, exit 1."""
    url = f"sqlite:///{tmp_path}/missing/demo.sqlite3"
    result = run_demo(url)
    assert result.exit_code == 1
    assert f"Error: the store at {url} failed" in result.output
    assert "Traceback" not in result.output


def test_config_file_sets_the_currency_registry(tmp_path):
    """A config file's currency maximum is enforced by the demo's ledger."""
    config = tmp_path / "ledger.toml"
    config.write_text(
        "".join(
            f'[[currencies]]\ncode = "{code}"\nscale = {scale}\n'
            for code, scale in (("EUR", 6), ("USD", 6), ("BTC", 8), ("ETH", 18))
        )
    )
    url = f"sqlite:///{tmp_path}/cfg.sqlite3"
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "demo", "--players", "4", "--rounds", "2", "--database-url", url],
    )
    assert result.exit_code == 0, result.output


def test_bad_config_is_refused_naming_the_field(tmp_path):
    """A malformed config exits 2 with the offending field's path."""
    config = tmp_path / "ledger.toml"
    config.write_text('[[currencies]]\ncode = "EUR"\nscale = 40\n')
    result = CliRunner().invoke(main, ["--config", str(config), "demo"])
    assert result.exit_code == 2
    assert "config.currencies[0].scale" in result.output


def test_config_without_the_demo_currencies_is_refused(tmp_path):
    """The demo needs its four currencies and says which are missing."""
    config = tmp_path / "ledger.toml"
    config.write_text('[[currencies]]\ncode = "EUR"\nscale = 6\n')
    result = CliRunner().invoke(main, ["--config", str(config), "demo"])
    assert result.exit_code == 2
    assert "missing: USD, BTC, ETH" in result.output


def test_every_command_shares_one_default_store_and_refuses_a_missing_one(tmp_path, monkeypatch):
    """After `ledger demo`, `ledger audit` with no --database-url audits the demo's store;
    commands that do not create a store refuse a SQLite file that does not exist."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in (["audit"], ["project"], ["export"], ["checkpoint", "--signing-key", "k"]):
        refused = runner.invoke(main, command)
        assert refused.exit_code == 2 and "no store at ledger.sqlite3" in refused.output, command
    assert not (tmp_path / "ledger.sqlite3").exists()
    assert runner.invoke(main, ["demo", "--players", "3", "--rounds", "2"]).exit_code == 0
    audited = runner.invoke(main, ["audit"])
    assert audited.exit_code == 1 and "run `ledger project`" in audited.output
    assert runner.invoke(main, ["project"]).exit_code == 0
    passed = runner.invoke(main, ["audit"])
    assert passed.exit_code == 0 and "audit passed" in passed.output
    assert "audited 0 events" not in passed.output


def test_the_demo_never_deletes_a_store_it_did_not_make(tmp_path, monkeypatch):
    """`ledger demo` replaces its own store on a rerun, and refuses a store `serve` made."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["demo", "--players", "2", "--rounds", "1"]).exit_code == 0
    assert runner.invoke(main, ["demo", "--players", "2", "--rounds", "1"]).exit_code == 0
    served = tmp_path / "served.sqlite3"
    with Ledger(f"sqlite:///{served}") as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
    refused = runner.invoke(main, ["demo", "--database-url", f"sqlite:///{served}"])
    assert refused.exit_code == 1 and "a store the demo did not make" in refused.output
    with Ledger(f"sqlite:///{served}") as ledger:
        assert ledger.balances("p1", "EUR").cash == 10 * EUR


@pytest.mark.parametrize(
    "command",
    [
        ["audit"],
        ["project"],
        ["export"],
        ["demo", "--players", "1"],
        ["checkpoint", "--signing-key", "k.pem"],
        ["serve", "--listen", "127.0.0.1:0"],
    ],
)
def test_no_traceback_for_an_unreachable_server_or_a_missing_database(command, tmp_path):
    """A closed port and a database that does not exist are one line each, before anything
    is written (no admin token); the commands that make a store offer --create-database."""
    runner = CliRunner()
    for url, said in (
        ("postgresql://postgres@127.0.0.1:1/x", "cannot reach PostgreSQL"),
        ("postgresql://postgres@127.0.0.1:5432/ledger_absent_db", "does not exist"),
    ):
        result = runner.invoke(
            main,
            [
                *command,
                "--database-url",
                url,
                *(["--state-dir", str(tmp_path)] if command[0] == "serve" else []),
            ],
        )
        assert result.exit_code == 1, result.output
        assert said in result.output and "Traceback" not in result.output
        creates = command[0] in ("demo", "serve")
        assert ("--create-database" in result.output) == (creates and said == "does not exist")
    assert not (tmp_path / "admin-token").exists()


@pytest.mark.postgres
def test_create_database_makes_a_missing_postgres_database(pg_database):
    """`ledger demo --create-database` creates the database it is pointed at, then plays."""
    name = f"ledger_created_{uuid.uuid4().hex[:8]}"
    url = pg_database.rsplit("/", 1)[0] + f"/{name}"
    try:
        result = CliRunner().invoke(
            main,
            ["demo", "--database-url", url, "--create-database", "--players", "2", "--rounds", "1"],
        )
        assert result.exit_code == 0, result.output
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_config_after_the_command_and_version_and_env_vars_in_help():
    """--config is accepted after the command too, `ledger --version` answers, and every
    option's help names its environment variable."""
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.startswith("ledger, version ")
    late = runner.invoke(main, ["demo", "--config", "/nonexistent.toml"])
    assert late.exit_code == 2 and "'--config'" in late.output
    for command in ("demo", "serve", "audit", "project", "export", "checkpoint"):
        help_text = runner.invoke(main, [command, "--help"]).output
        options = help_text.count("\n  -") - 1  # --help itself has none
        assert " ".join(help_text.split()).count("[env var:") == options, command


def test_token_new_prints_the_token_once_and_its_hash_in_a_clients_table(tmp_path):
    """The TOML block loads as an auth config, and the printed token authenticates."""
    from ledger.api.auth import auth_config_from_toml, token_sha256

    result = CliRunner().invoke(
        main, ["token", "new", "--name", "acme", "--role", "game_provider", "--provider", "acme"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.split("keep no copy): ")[1].split()[0]
    table = result.output[result.output.index("[[clients]]") :]
    [client] = auth_config_from_toml(table.encode()).clients
    assert (client.name, client.role, client.provider) == ("acme", "game_provider", "acme")
    assert client.token_sha256 == token_sha256(token)
    refused = CliRunner().invoke(
        main, ["token", "new", "--name", "x", "--role", "auditor", "--provider", "acme"]
    )
    assert refused.exit_code == 2
