"""`ledger project` (build or follow the read models) and `ledger audit` (replay and check)."""

import signal
import sys
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.cli.support import database_url_option, require_store, store_errors
from ledger.core import limits
from ledger.core.errors import InvalidArgument
from ledger.event_log import log_size
from ledger.service.application import Ledger
from ledger.service.checkpoints import load_verify_key, read_checkpoint_file
from ledger.service.runtime import tune_garbage_collector
from ledger.store.database import redact
from projections.audit import AuditReport, audit
from projections.checkpoint_check import NamedCheckpoint
from projections.follower import FollowerState, ProjectionFollower
from projections.runner import ProjectionRunner
from projections.stores import open_projection_store


def _progress(console: Console, total: int) -> tuple[Progress, int]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
    return progress, progress.add_task("replaying", total=total)


@click.command("project")
@database_url_option(creates_store=False)
@click.option(
    "--page-size",
    type=click.IntRange(1, limits.log_page_size_max),
    default=limits.log_page_size,
    show_default=True,
)
@click.option("--follow", is_flag=True, help="Keep the views current until SIGTERM.")
def project_command(database_url: str, page_size: int, follow: bool) -> None:
    """Builds the read models (balances, journal, trial balance, statements) from the log."""
    require_store(database_url, creates_store=False)
    tune_garbage_collector()  # a batch job over a large heap, like the server
    console = Console(stderr=True)
    with (
        store_errors(database_url),
        Ledger(database_url, currency_scales="ignore", store_kind="either") as ledger,
    ):
        store = open_projection_store(database_url)
        runner = ProjectionRunner(ledger.log, store, page_size=page_size)
        lag = runner.lag()
        progress, task = _progress(console, lag)
        with progress:
            done = runner.catch_up(lambda n: progress.update(task, completed=n))
        click.echo(f"projected {done} events; views at event #{store.position()}")
        failed = follow and not _follow(runner)
        store.close()
    if failed:
        sys.exit(1)


def _follow(runner: ProjectionRunner) -> bool:
    """Follows through store outages, as the server does, until SIGTERM; False if a bug
    stopped it (logged with its traceback)."""
    follower = ProjectionFollower(runner)
    signal.signal(signal.SIGTERM, lambda *_: follower.stopping.set())
    follower.run()
    return follower.state is not FollowerState.FAILED


@click.command("audit")
@database_url_option(creates_store=False)
@click.option(
    "--projections/--no-projections",
    default=True,
    show_default=True,
    help="Also compare the read models with the replay.",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A signed checkpoint file kept away from the database: prove the history still "
    "extends it. May be repeated.",
)
@click.option(
    "--verify-key",
    "verify_keys",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A trusted public key (PEM): every checkpoint must be signed by one of them (repeat "
    "it across a key rotation). Without it, signatures are checked against the keys the "
    "checkpoints name.",
)
def audit_command(
    database_url: str,
    projections: bool,
    checkpoint_files: tuple[str, ...],
    verify_keys: tuple[str, ...],
) -> None:
    """Replays the whole history independently; exit 0 only if every check holds."""
    require_store(database_url, creates_store=False)
    tune_garbage_collector()  # a batch job over a large heap, like the server
    checkpoints, trusted_keys = _anchors(checkpoint_files, verify_keys)
    console = Console(stderr=True)
    with (
        store_errors(database_url),
        Ledger(database_url, currency_scales="ignore", store_kind="either") as ledger,
    ):
        store = open_projection_store(database_url)
        total = log_size(ledger.log)
        progress, task = _progress(console, total)
        with progress:
            report = audit(
                ledger.log,
                store if projections else None,
                lambda n: progress.update(task, completed=n),
                checkpoints=checkpoints,
                trusted_keys=trusted_keys,
            )
        store.record_audit(audit_run(report, projections))
        store.close()
    _print_report(report, database_url, projections)


def audit_run(report: AuditReport, projections: bool) -> dict:
    """What the console shows of an audit: when, how much, the verdict and its first finding."""
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": report.events,
        "wallets": report.wallets,
        "passed": report.passed,
        "finding_count": report.finding_count,
        "first_finding": str(report.findings[0]) if report.findings else None,
        "checkpoints": list(report.checkpoints_verified),
        "projections_compared": projections,
    }


def _anchors(files: tuple[str, ...], verify_keys: tuple[str, ...]):
    """The checkpoint files and the trusted keys, or a usage error naming the option."""
    try:
        trusted_keys = [load_verify_key(path) for path in verify_keys]
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--verify-key'") from None
    try:
        checkpoints = [
            NamedCheckpoint(f"checkpoint file {path}", read_checkpoint_file(path)) for path in files
        ]
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--checkpoint'") from None
    return checkpoints, trusted_keys


def _print_report(report, database_url: str, projections: bool) -> None:
    click.echo(
        f"audited {report.events} events in {report.wallets} wallet streams "
        f"of {redact(database_url)}"
    )
    for currency, total_minor in sorted(report.trial_balance.items()):
        click.echo(f"trial balance {currency}: {total_minor}")
    for verified in report.checkpoints_verified:
        click.echo(f"the history extends {verified}")
    for skipped in report.checkpoints_skipped:
        click.echo(f"not checked: {skipped}")
    if report.passed:
        views = ", projections equal the replay" if projections else " (projections not compared)"
        click.echo(
            "audit passed: chains intact, versions contiguous, journals balanced, "
            f"every record matches its events{views}"
        )
        return
    click.echo(
        f"AUDIT FAILED: {report.finding_count} findings; first: {report.findings[0]}", err=True
    )
    for finding in report.findings[1:]:
        click.echo(f"  {finding}", err=True)
    sys.exit(1)
