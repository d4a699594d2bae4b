"""`ledger export`: the whole journal as a plain-text journal for hledger and ledger-cli.

The command is registered on the `ledger` group by `ledger.cli.main`; it lives here so that the
export and its command line change together. Errors are translated here, once, the way the
rest of the command line does it: malformed input is a usage error (exit status 2) naming
what is wrong, a store that cannot be read a one-line error (exit status 1). Never a
traceback.

Progress and the closing summary go to standard error, so standard output carries the
journal alone. A journal written to `-o FILE` appears there complete or not at all: it is
written to a temporary file beside FILE and renamed over it only at the end.
"""

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.cli.support import STORE_ERRORS, config_option, database_url_option, require_store
from ledger.config import load_rules
from ledger.core.errors import InvalidArgument
from ledger.core.money import format_amount
from ledger.core.policy import Rules
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.store.database import redact
from projections.export import ExportStats, write_ledger_journal

FORMATS = ("ledger",)
STANDARD_OUTPUT = "-"
# An export only reads: it must not create tables in a database that has none.
_READ_ONLY_ENVIRONMENT = {"CREATE_TABLE": "n"}


@click.command("export")
@click.option(
    "--format",
    "journal_format",
    type=click.Choice(FORMATS),
    default="ledger",
    show_default=True,
    help="ledger: a journal that hledger and ledger-cli read.",
)
@database_url_option(creates_store=False)
@config_option
@click.option(
    "-o",
    "--output",
    default=STANDARD_OUTPUT,
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The journal file, replaced only once complete; '-' is standard output.",
)
@click.pass_context
def export_command(
    context: click.Context, journal_format: str, database_url: str, output: str
) -> None:
    """Exports the whole journal: one transaction per wallet event that moves money.

    Check it with a tool nobody here wrote: `hledger -f FILE check accounts commodities`,
    then compare `hledger -f FILE balance` with the engine's balances.
    """
    assert journal_format in FORMATS, journal_format
    rules = context.find_object(Rules) or load_rules(None)
    require_store(database_url, creates_store=False)
    console = Console(stderr=True)
    started_s = time.perf_counter()
    with (
        _export_errors(database_url),
        _opened_ledger(database_url, rules) as ledger,
        _output_stream(output) as out,
    ):
        stats = _export_with_progress(ledger, out, console)
    _report(stats, rules, time.perf_counter() - started_s)


@contextmanager
def _export_errors(database_url: str) -> Iterator[None]:
    """Turns a failing store, an unknown currency or an unwritable output into one line."""
    try:
        yield
    except STORE_ERRORS as error:
        # Drivers explain over several lines (PostgreSQL's "Is the server running..."): one.
        reason = " ".join(str(error).split())
        message = f"the store at {redact(database_url)} failed: {reason}"
        raise click.ClickException(message) from error
    except InvalidArgument as error:
        # The store holds a currency the configuration does not define: no scale to use.
        raise click.BadParameter(str(error), param_hint="'--config'") from None
    except OSError as error:
        raise click.ClickException(f"cannot write the journal: {error}") from error


@contextmanager
def _opened_ledger(database_url: str, rules: Rules) -> Iterator[Ledger]:
    ledger = Ledger(
        database_url,
        rules=rules,
        environment=_READ_ONLY_ENVIRONMENT,
        currency_scales="check",
        store_kind="either",
    )
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def _output_stream(output: str) -> Iterator[TextIO]:
    """Standard output, or a temporary file that replaces output only when complete."""
    if output == STANDARD_OUTPUT:
        yield sys.stdout
        return
    target = Path(output)
    if not target.name:
        raise click.BadParameter("names no file", param_hint="'--output'")
    # Created with the usual permissions (the umask applies), unlike a tempfile's 0600.
    partial_path = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        # Opened apart from the `with` below, so that only this failure is a usage error.
        partial = open(partial_path, "x", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as error:
        message = f"cannot write {output}: {error.strerror or error}"
        raise click.BadParameter(message, param_hint="'--output'") from None
    try:
        with partial:
            yield partial
        os.replace(partial_path, target)
    except BaseException:
        partial_path.unlink(missing_ok=True)
        raise


def _export_with_progress(ledger: Ledger, out: TextIO, console: Console) -> ExportStats:
    columns = (
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
    )
    # Off when standard error is not a terminal, so logs and pipes get the summary alone.
    is_shown = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not is_shown) as progress:
        total = log_size(ledger.log) if is_shown else None
        task = progress.add_task("exporting", total=total)

        def show(events_read: int) -> None:
            progress.update(task, completed=events_read)

        return write_ledger_journal(ledger, out, on_progress=show)


def _report(stats: ExportStats, rules: Rules, elapsed_s: float) -> None:
    """One summary line on standard error, and a warning per currency that does not balance."""
    # Seconds and rates are the only floats here; amounts never are.
    rate = stats.events_read / elapsed_s if elapsed_s > 0 else 0.0
    click.echo(
        f"exported {stats.transactions} transactions, {stats.postings} postings, "
        f"{stats.accounts} accounts from {stats.events_read} events "
        f"in {elapsed_s:.1f} s ({rate:.0f} events/s)",
        err=True,
    )
    for currency in stats.currencies:
        if currency.net_minor != 0:
            net = format_amount(currency.net_minor, rules.currencies.get(currency.currency))
            click.echo(
                f"warning: the {currency.currency} journals do not balance (net {net}); "
                "hledger will refuse the file",
                err=True,
            )
