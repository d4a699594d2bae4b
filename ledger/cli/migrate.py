"""`ledger migrate`: copies a single-log PostgreSQL store into the partitioned layout and
audits the copy (`ledger.service.migration`). Registered on the `ledger` group by
`ledger.cli.main`.

Errors are translated here, once: a URL of the wrong kind is a usage error naming the
option, a store that fails or a copy that cannot be trusted a one-line error.
"""

import click

from ledger.cli.checkpoint import key_and_previous
from ledger.cli.support import database_url_option, require_store, store_errors
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.errors import InvalidArgument
from ledger.service.application import utc_now
from ledger.service.checkpoints import CheckpointRefused, write_checkpoint_file
from ledger.service.migration import Anchor, MigrationRefused, migrate
from ledger.store.database import (
    LAYOUT_AUTO,
    LAYOUT_PARTITIONED,
    LAYOUT_SINGLE,
    LOG_LAYOUT,
    redact,
    store_environment,
    with_layout,
)
from ledger.store.open import holds_single_log, open_copy_target, open_event_log


@click.command("migrate")
@database_url_option(creates_store=False)
@click.option(
    "--to",
    "target_url",
    default=None,
    help="The partitioned store to copy into [default: the same database and schema, "
    "layout=partitioned].",
)
@click.option(
    "--signing-key",
    envvar="LEDGER_CHECKPOINT_KEY",
    default=None,
    type=click.Path(dir_okay=False),
    help="The Ed25519 key (PEM) of your checkpoints: sign the proved copy's first checkpoint.",
)
@click.option(
    "--previous",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="The single log's newest kept checkpoint: the old log is audited against it before "
    "the copy, and the copy's first checkpoint names it, so the chain goes on.",
)
@click.option(
    "--output",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the copy's first checkpoint here (add it to the server's --checkpoint-dir).",
)
def migrate_command(
    database_url: str,
    target_url: str | None,
    signing_key: str | None,
    previous: str | None,
    output: str | None,
) -> None:
    """Copies a PostgreSQL store's single event log into the partitioned layout, then
    audits the copy. The old tables are left untouched; stop every server first. Run it
    again to resume a copy that was interrupted."""
    anchor = _anchor(signing_key, previous, output)
    with store_errors(database_url):
        source_environment = _source_environment(database_url)
    target_url = target_url or with_layout(database_url, LAYOUT_PARTITIONED)
    target_environment = _target_environment(target_url)
    with store_errors(database_url):
        report = _run(source_environment, target_environment, anchor)
    click.echo(
        f"copied {report.copied} of {report.events} events into {redact(target_url)}; "
        f"the audit of the copy found {len(report.findings)} problems"
    )
    for finding in report.findings[:20]:
        click.echo(f"  {finding}", err=True)
    if not report.is_sound:
        raise SystemExit(1)
    _report_checkpoint(report.checkpoint, output)
    click.echo(f"serve it with --database-url '{redact(target_url)}'")


def _anchor(signing_key: str | None, previous: str | None, output: str | None) -> Anchor | None:
    if signing_key is None:
        if previous is not None or output is not None:
            raise click.BadParameter("needs --signing-key", param_hint="'--previous'/'--output'")
        return None
    key, kept = key_and_previous(signing_key, previous)
    return Anchor(key, kept, utc_now())


def _report_checkpoint(signed: SignedCheckpoint | None, output: str | None) -> None:
    if signed is None:
        return
    stated = signed.checkpoint
    lineage = f", continuing {stated.previous[:16]}…" if stated.previous else ""
    click.echo(f"the copy's first checkpoint: {stated.event_count} events{lineage}")
    if output is not None:
        write_checkpoint_file(output, signed)
        click.echo(f"written to {output}")


def _source_environment(database_url: str) -> dict[str, str]:
    """The single log's environment: the URL's, which must name that layout or none (then
    the store must hold a single log)."""
    environment = require_store(database_url, creates_store=False)
    layout = environment.get(LOG_LAYOUT)
    if layout == LAYOUT_AUTO and not holds_single_log(environment):
        raise click.BadParameter(
            "this store holds no single event log to carry over", param_hint="'--database-url'"
        )
    if layout not in (LAYOUT_AUTO, LAYOUT_SINGLE):
        raise click.BadParameter(
            "must name a PostgreSQL store with the single log (layout=single, or no layout)",
            param_hint="'--database-url'",
        )
    return {**environment, LOG_LAYOUT: LAYOUT_SINGLE}


def _target_environment(target_url: str) -> dict[str, str]:
    try:
        environment = store_environment(target_url)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--to'") from None
    if environment.get(LOG_LAYOUT) != LAYOUT_PARTITIONED:
        raise click.BadParameter(
            "must name a PostgreSQL store with layout=partitioned", param_hint="'--to'"
        )
    return environment


def _run(
    source_environment: dict[str, str], target_environment: dict[str, str], anchor: Anchor | None
):
    source = open_event_log(source_environment)
    try:
        target = open_copy_target(target_environment)
        try:
            return migrate(source, target, anchor=anchor)
        except (MigrationRefused, CheckpointRefused) as error:
            raise click.ClickException(str(error)) from None
        finally:
            target.close()
    finally:
        source.close()
