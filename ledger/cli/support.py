"""What every `ledger` command shares at the edge: the store and configuration options, a
check that the store is there before anything runs, and errors translated into one line.

Rules for every command:
- One default store, `sqlite:///ledger.sqlite3`, for every command. Only the commands that
  create a store (`demo`, `serve`) accept a SQLite file that does not exist yet; the others
  refuse, so an audit never passes on an empty file it just created.
- A PostgreSQL server that cannot be reached, or a database that does not exist, is said in
  one line before anything else happens (no token written, no table created); the commands
  that create a store offer `--create-database`.
- No traceback reaches a user: malformed input is a usage error (exit status 2) naming the
  option, a store that fails a one-line error (exit status 1).
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import psycopg
from eventsourcing.domain import EventSourcingError
from psycopg import sql

from ledger.config import load_rules
from ledger.core.errors import ChainBroken, ConcurrencyExhausted, InvalidArgument
from ledger.event_log import AppendConflict, RecordUndecodable
from ledger.store.database import DEFAULT_DATABASE_URL, redact, store_environment

CONNECT_TIMEOUT_S = 5
# A store that cannot be opened, written or decoded, or whose streams are broken or contended.
STORE_ERRORS = (
    EventSourcingError,
    ChainBroken,
    ConcurrencyExhausted,
    RecordUndecodable,
    AppendConflict,
    sqlite3.Error,
    psycopg.Error,
)


def database_url_option(*, creates_store: bool):
    """--database-url, with the one default every command shares."""
    kept = "created if missing" if creates_store else "must exist"
    return click.option(
        "--database-url",
        envvar="LEDGER_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help=f"sqlite:///FILE or postgresql://USER@HOST/DATABASE (a SQLite file: {kept}).",
    )


create_database_option = click.option(
    "--create-database",
    is_flag=True,
    default=False,
    envvar="LEDGER_CREATE_DATABASE",
    help="On PostgreSQL, create the database first if it does not exist.",
)


def _use_config(context: click.Context, _: click.Parameter, path: str | None) -> None:
    """--config after the command name: replaces the rules the group loaded."""
    if path is None:
        return
    try:
        context.obj = load_rules(path)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--config'") from None


config_option = click.option(
    "--config",
    "config_path",
    envvar="LEDGER_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    expose_value=False,
    callback=_use_config,
    help="TOML file: currencies and casino policy (may also come before the command).",
)


def require_store(
    database_url: str, *, creates_store: bool, create_database: bool = False
) -> dict[str, str]:
    """The store's environment, once the store is known to be there (or creatable)."""
    try:
        environment = store_environment(database_url)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--database-url'") from None
    if environment["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        _require_sqlite_file(environment["SQLITE_DBNAME"], creates_store)
    else:
        _require_postgres_database(environment, creates_store, create_database)
    return environment


def _require_sqlite_file(name: str, creates_store: bool) -> None:
    if creates_store or name == ":memory:" or name.startswith("file:"):
        return  # created on first use, or a SQLite database with no plain file to look for
    if not Path(name).is_file():
        raise click.BadParameter(
            f"no store at {name}: run `ledger demo` or `ledger serve` to make one, or name another",
            param_hint="'--database-url'",
        )


def _require_postgres_database(
    environment: dict[str, str], creates_store: bool, create_database: bool
) -> None:
    where = f"{environment['POSTGRES_HOST']}:{environment['POSTGRES_PORT']}"
    name = environment["POSTGRES_DBNAME"]
    try:
        _connect(environment, name).close()
        return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise click.ClickException(
                f"cannot reach PostgreSQL at {where}: {_first_line(error)}"
            ) from None
    if not (creates_store and create_database):
        offer = " or pass --create-database" if creates_store else ""
        raise click.ClickException(
            f"database {name!r} does not exist on {where}: create it (`createdb -h "
            f"{environment['POSTGRES_HOST']} -p {environment['POSTGRES_PORT']} -U "
            f"{environment['POSTGRES_USER']} {name}`){offer}"
        )
    with _connect(environment, "postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _connect(environment: dict[str, str], database: str) -> psycopg.Connection:
    return psycopg.connect(
        dbname=database,
        host=environment["POSTGRES_HOST"],
        port=environment["POSTGRES_PORT"],
        user=environment["POSTGRES_USER"],
        password=environment["POSTGRES_PASSWORD"] or None,
        connect_timeout=CONNECT_TIMEOUT_S,
        autocommit=True,
    )


def _first_line(error: BaseException) -> str:
    """Drivers explain over several lines (PostgreSQL's "Is the server running..."): one."""
    return " ".join(str(error).split())


@contextmanager
def store_errors(database_url: str) -> Iterator[None]:
    """Turns a failing store, or a configuration the store contradicts, into one line."""
    try:
        yield
    except STORE_ERRORS as error:
        raise click.ClickException(
            f"the store at {redact(database_url)} failed: {_first_line(error)}"
        ) from error
    except InvalidArgument as error:
        if error.field == "test_clock":  # a test store opened as production, or the reverse
            raise click.BadParameter(error.reason, param_hint="'--test-clock'") from None
        if error.field == "database_url":  # e.g. tables of two layouts, neither chosen
            raise click.BadParameter(error.reason, param_hint="'--database-url'") from None
        if not error.field.startswith("config"):
            raise
        raise click.BadParameter(str(error), param_hint="'--config'") from None
