"""`ledger checkpoint-key` and `ledger checkpoint`: anchoring the history with signed
checkpoints (see `ledger.service.checkpoints`). Registered on the `ledger` group by
`ledger.cli.main`.

Errors are translated here, once: a bad key or path is a usage error naming the option,
a store that fails or a checkpoint that cannot be written a one-line error. Never a
traceback.
"""

from pathlib import Path

import click

from ledger.cli.support import database_url_option, require_store, store_errors
from ledger.core.errors import InvalidArgument
from ledger.service.application import Ledger
from ledger.service.checkpoints import (
    CheckpointRefused,
    generate_key,
    load_signing_key,
    public_key_hex,
    read_checkpoint_file,
    write_checkpoint,
    write_checkpoint_file,
)
from ledger.store.database import redact


@click.command("checkpoint-key")
@click.argument("path", type=click.Path(dir_okay=False))
def checkpoint_key_command(path: str) -> None:
    """Creates an Ed25519 signing key at PATH (mode 0600) and its public key at PATH.pub.

    Keep the private key where the database's administrators cannot read it: whoever
    holds it can sign a checkpoint of a rewritten history.
    """
    try:
        public = generate_key(Path(path))
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="PATH") from None
    click.echo(f"private key written to {path} (mode 0600), public key to {path}.pub")
    click.echo(f"public key: {public_key_hex(public)}")


@click.command("checkpoint")
@database_url_option(creates_store=False)
@click.option(
    "--signing-key",
    envvar="LEDGER_CHECKPOINT_KEY",
    required=True,
    type=click.Path(dir_okay=False),
    help="The Ed25519 private key (PEM) that signs.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the signed checkpoint to this file, to keep away from the database.",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Your newest kept checkpoint file: continue from it (reading only newer events, and "
    "never signing over a rewritten past). Without it the whole log is read.",
)
def checkpoint_command(
    database_url: str, signing_key: str, output: str | None, previous: str | None
) -> None:
    """Signs a checkpoint of the event log and appends it to the log.

    `ledger audit --checkpoint FILE` later proves the history still extends it: anything
    at or before its position that is truncated or rewritten is caught.
    """
    require_store(database_url, creates_store=False)
    key, anchor = key_and_previous(signing_key, previous)
    try:
        # The store's own clock: on a test store, the checkpoint is at the test clock's time.
        with (
            store_errors(database_url),
            Ledger(database_url, currency_scales="ignore", store_kind="either") as ledger,
        ):
            signed = write_checkpoint(ledger.log, key, ledger.clock(), previous=anchor)
    except CheckpointRefused as error:
        raise click.ClickException(f"{redact(database_url)}: {error}") from None
    if signed is None:
        click.echo(
            "nothing to checkpoint: "
            + ("nothing new since the previous checkpoint" if anchor else "the log is empty")
        )
        return
    stated = signed.checkpoint
    click.echo(
        f"checkpoint #{stated.position}: {stated.event_count} events, "
        f"Merkle root {stated.merkle_root}"
    )
    if output is not None:
        write_checkpoint_file(output, signed)
        click.echo(f"written to {output}")


def key_and_previous(signing_key: str, previous: str | None):
    """The signing key and the previous checkpoint file's checkpoint, or a usage error."""
    try:
        key = load_signing_key(signing_key)
        return key, read_checkpoint_file(previous) if previous is not None else None
    except InvalidArgument as error:
        raise click.BadParameter(str(error)) from None
