"""The `ledger` command line. Its main job, `ledger demo`, runs a seeded casino simulation
through the real ledger on the embedded SQLite store (or PostgreSQL) and prints a trial
balance folded independently from the stored events.

Errors are translated here, once (with `ledger.cli.support`): malformed input becomes a
usage error (exit status 2) naming what is wrong, a store that cannot be used a one-line
error (exit status 1), and a ledger that does not add up a loud report and exit status 1.
Never a traceback. Every option can come from an environment variable, shown in --help.
"""

import asyncio
import secrets
import time
from pathlib import Path

import click
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.api.auth import ROLES, bootstrap_admin, load_auth_config, token_sha256
from ledger.api.metrics_endpoint import MetricsEndpoint
from ledger.api.server import (
    CheckpointSettings,
    LedgerServer,
    ServerSettings,
    TlsFiles,
    serve_until_signalled,
)
from ledger.api.telemetry import EXPORTERS, Telemetry
from ledger.cli.demo import (
    CURRENCIES as DEMO_CURRENCIES,
)
from ledger.cli.demo import (
    PLAYER_COUNT_MAX,
    ROUND_COUNT_MAX,
    SEED_MAX,
    DemoConfig,
    Tally,
    open_ledger,
    simulate,
)
from ledger.cli.summary import PLAYER_ACCOUNT_KINDS, CurrencyTotals, LedgerSummary, summarize
from ledger.cli.support import (
    config_option,
    create_database_option,
    database_url_option,
    require_store,
    store_errors,
)
from ledger.config import load_rules
from ledger.core import limits
from ledger.core.commands import COMMAND_TYPES
from ledger.core.errors import InvalidArgument
from ledger.core.money import CurrencyRegistry, format_amount
from ledger.core.outcomes import Outcome
from ledger.core.policy import Rules
from ledger.logs import configure_logging
from ledger.service.application import Ledger
from ledger.service.checkpoints import load_signing_key
from ledger.service.runtime import tune_garbage_collector
from ledger.store.database import redact

SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")
# Beside a SQLite store the demo made: the next `ledger demo` may delete that store, never
# one it did not make (it shares the default file with `ledger serve`).
DEMO_MARKER_SUFFIX = ".demo"
TOKEN_BYTES = 32  # of randomness in a client token minted by `ledger token new`


@click.group(context_settings={"auto_envvar_prefix": "LEDGER", "show_default": True})
@click.version_option(package_name="casino-ledger", prog_name="ledger")
@click.option(
    "--config",
    "config_path",
    envvar="LEDGER_CONFIG",
    default=None,
    type=click.Path(dir_okay=False),
    help="TOML file: currencies and casino policy.",
)
@click.pass_context
def main(context: click.Context, config_path: str | None) -> None:
    """Casino ledger: an event-sourced, double-entry ledger engine."""
    try:
        context.obj = load_rules(config_path)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--config'") from None


@main.command()
@database_url_option(creates_store=True)
@create_database_option
@config_option
@click.option(
    "--players",
    type=click.IntRange(1, PLAYER_COUNT_MAX),
    default=200,
    show_default=True,
    help="Number of simulated players.",
)
@click.option(
    "--rounds",
    type=click.IntRange(0, ROUND_COUNT_MAX),
    default=20,
    show_default=True,
    help="Game rounds per player.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, SEED_MAX),
    default=7,
    show_default=True,
    help="Seed of every random draw: one seed, one run.",
)
@click.option(
    "--fresh/--no-fresh",
    default=True,
    show_default=True,
    help="Delete a SQLite file the demo made first (never another store). A PostgreSQL store "
    "is never deleted: runs append.",
)
@click.pass_obj
def demo(
    rules: Rules,
    database_url: str,
    create_database: bool,
    players: int,
    rounds: int,
    seed: int,
    fresh: bool,
) -> None:
    """Runs a seeded casino simulation and prints its trial balance.

    Players deposit, play, get bonuses, hit limits, retry, are charged back and withdraw,
    all through the real ledger; the closing balances are folded from the stored events.
    """
    environment = require_store(database_url, creates_store=True, create_database=create_database)
    _require_demo_currencies(rules)
    is_sqlite = environment["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    if fresh and is_sqlite:
        _delete_demo_store(environment["SQLITE_DBNAME"])
    config = DemoConfig(players=players, rounds=rounds, seed=seed)
    console = Console()
    mode = "fresh" if fresh and is_sqlite else "appending"
    _say(
        console,
        f"ledger demo: {players} players × {rounds} rounds, seed {seed}, "
        f"{redact(database_url)} ({mode})",
    )
    with store_errors(database_url), open_ledger(database_url, seed, rules) as ledger:
        if is_sqlite:
            _mark_demo_store(environment["SQLITE_DBNAME"])
        started_s = time.perf_counter()
        tally = _simulate_with_progress(ledger, config, console)
        elapsed_s = time.perf_counter() - started_s
        summary = summarize(ledger)
    _print_tally(console, tally, elapsed_s)
    _print_summary(console, summary, ledger.rules.currencies)
    _fail_unless_sound(console, tally, summary)


def _say(console: Console, text: str, style: str | None = None) -> None:
    """Prints one plain line: no markup or highlighting, never wrapped, so it stays greppable."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _require_demo_currencies(rules: Rules) -> None:
    missing = [code for code in DEMO_CURRENCIES if code not in rules.currencies]
    if missing:
        message = f"the demo plays in {', '.join(DEMO_CURRENCIES)}; missing: {', '.join(missing)}"
        raise click.BadParameter(message, param_hint="'--config'")


def _delete_demo_store(name: str) -> None:
    """Deletes a SQLite store the demo made, with its journal files, so a rerun starts from
    nothing; refuses one it did not make."""
    if name == ":memory:" or name.startswith("file:"):
        return  # an in-memory or URI-named database: nothing on disk to delete
    if Path(name).exists() and not Path(name + DEMO_MARKER_SUFFIX).exists():
        raise click.ClickException(
            f"{name} holds a store the demo did not make: name another file with "
            "--database-url, or add the demo's history to it with --no-fresh"
        )
    for suffix in (*SQLITE_FILE_SUFFIXES, DEMO_MARKER_SUFFIX):
        try:
            Path(name + suffix).unlink(missing_ok=True)
        except OSError as error:
            raise click.ClickException(f"cannot delete {name + suffix}: {error.strerror}") from None


def _mark_demo_store(name: str) -> None:
    if name != ":memory:" and not name.startswith("file:"):
        Path(name + DEMO_MARKER_SUFFIX).write_text("made by `ledger demo`: it may delete it\n")


def _simulate_with_progress(ledger: Ledger, config: DemoConfig, console: Console) -> Tally:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rounds"),
        TimeElapsedColumn(),
    )
    # Off when output is not a terminal, so logs and pipes get the report alone.
    is_shown = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not is_shown) as progress:
        task = progress.add_task("simulating", total=config.players * config.rounds)

        def show(tally: Tally) -> None:
            description = f"{tally.commands} commands"
            progress.update(task, completed=tally.rounds_done, description=description)

        return simulate(ledger, config, on_progress=show)


def _print_tally(console: Console, tally: Tally, elapsed_s: float) -> None:
    # Seconds and rates are the only floats in the program; amounts never are.
    rate = tally.commands / elapsed_s if elapsed_s > 0 else 0.0
    _say(console, f"commands executed: {tally.commands}")
    _say(console, f"elapsed {elapsed_s:.1f} s, {rate:.0f} commands/s")
    table = Table(title="Outcomes per command type")
    table.add_column("command")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for command_type in COMMAND_TYPES:
        counts = tally.outcomes.get(command_type.__name__)
        for outcome in Outcome:
            if counts and counts[outcome]:
                table.add_row(command_type.__name__, outcome.value, str(counts[outcome]))
    console.print(table)


def _print_summary(console: Console, summary: LedgerSummary, registry: CurrencyRegistry) -> None:
    _say(
        console,
        f"folded {summary.event_count} stored events; "
        f"{summary.wallet_count} wallets checked against their streams",
    )
    for totals in summary.currencies:
        console.print(_currency_table(totals, registry))
        if totals.total == 0:
            _say(console, f"{totals.currency} sum = 0 ✓", style="green")
        else:
            amount = format_amount(totals.total, registry.get(totals.currency))
            verdict = f"{totals.currency} sum = {amount} ✗ THE BOOKS DO NOT BALANCE"
            _say(console, verdict, style="bold red")


def _currency_table(totals: CurrencyTotals, registry: CurrencyRegistry) -> Table:
    currency = registry.get(totals.currency)
    table = Table(title=f"{totals.currency} accounts")
    table.add_column("account")
    table.add_column(f"balance ({totals.currency})", justify="right")
    for kind in PLAYER_ACCOUNT_KINDS:
        table.add_row(f"players' {kind}", format_amount(totals.players[kind], currency))
    for account, balance in totals.accounts.items():
        table.add_row(account, format_amount(balance, currency))
    table.add_section()
    table.add_row("sum", format_amount(totals.total, currency))
    return table


def _fail_unless_sound(console: Console, tally: Tally, summary: LedgerSummary) -> None:
    """Reports every problem found, loudly, and exits non-zero if there was any."""
    for problem in (*summary.problems, *tally.anomalies):
        _say(console, f"✗ {problem}", style="bold red")
    failures = []
    if not all(totals.total == 0 for totals in summary.currencies):
        failures.append("the accounts do not sum to zero")
    if summary.problem_count:
        failures.append(f"{summary.problem_count} ledger problems")
    if tally.anomaly_count:
        failures.append(f"{tally.anomaly_count} unexpected engine answers")
    if failures:
        raise click.ClickException("; ".join(failures))


@main.command()
@database_url_option(creates_store=True)
@create_database_option
@config_option
@click.option("--listen", default="127.0.0.1:50051", show_default=True, help="HOST:PORT.")
@click.option(
    "--auth-config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML of [[clients]]: name, role, provider, token_sha256. Without it, an admin "
    "token is created on first start in --state-dir.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=".ledger",
    show_default=True,
    help="Where the first-start admin token and its hash are kept.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="CA bundle for client certificates: turns on mutual TLS.",
)
@click.option("--group-commit/--no-group-commit", default=True, show_default=True)
@click.option(
    "--group-window-ms",
    type=click.FloatRange(0, 100),
    show_default=True,
    default=limits.group_commit_window_ms_default,
)
@click.option(
    "--groups-in-flight",
    type=click.IntRange(1, limits.group_commit_groups_in_flight_max),
    show_default=True,
    default=limits.group_commit_groups_in_flight_default,
    help="Groups written at once, their wallets disjoint (a log of one partition writes one).",
)
@click.option(
    "--otel-exporter",
    type=click.Choice(EXPORTERS),
    default="none",
    show_default=True,
    envvar="LEDGER_OTEL_EXPORTER",
)
@click.option(
    "--metrics-listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (no TLS, no auth: loopback or "
    "a private network only). Off by default.",
)
@click.option(
    "--max-concurrent-calls",
    type=click.IntRange(1, limits.concurrent_calls_max),
    default=limits.concurrent_calls_max,
    show_default=True,
    help="Calls past this many at once are refused with RESOURCE_EXHAUSTED.",
)
@click.option(
    "--projections/--no-projections",
    default=True,
    show_default=True,
    help="Keep the read models (account balances, trial balance) current while serving.",
)
@click.option(
    "--checkpoint-key",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="LEDGER_CHECKPOINT_KEY",
    help="Ed25519 private key (PEM): write a signed checkpoint of the log every interval.",
)
@click.option(
    "--checkpoint-interval-s",
    show_default=True,
    default=limits.checkpoint_interval_s_default,
    type=click.IntRange(limits.checkpoint_interval_s_min, limits.checkpoint_interval_s_max),
)
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Also write each checkpoint to a file here, for the operator to keep elsewhere.",
)
@click.option(
    "--adopt-currency-scales",
    is_flag=True,
    default=False,
    help="Record the configured currency scales on a store written before scales were "
    "recorded, once you have checked they are those its amounts were written in.",
)
@click.option(
    "--test-clock",
    is_flag=True,
    default=False,
    help="Serve a test store, whose clock an admin may advance (AdvanceClock): creates one on "
    "an empty store. Refused on a store created without it; a test store needs it.",
)
@click.option("--log-level", type=click.Choice(("debug", "info", "warning")), default="info")
@click.pass_obj
def serve(
    rules: Rules,
    database_url: str,
    create_database: bool,
    listen: str,
    auth_config: str | None,
    state_dir: str,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    group_commit: bool,
    group_window_ms: float,
    groups_in_flight: int,
    otel_exporter: str,
    metrics_listen: str | None,
    max_concurrent_calls: int,
    projections: bool,
    checkpoint_key: str | None,
    checkpoint_interval_s: int,
    checkpoint_dir: str | None,
    adopt_currency_scales: bool,
    test_clock: bool,
    log_level: str,
) -> None:
    """Serves the LedgerService over gRPC until SIGTERM, then drains in-flight calls."""
    configure_logging(log_level)
    metrics = _metrics_endpoint(metrics_listen)
    telemetry = _telemetry(otel_exporter, metrics)
    require_store(database_url, creates_store=True, create_database=create_database)
    configured = _configured_clients(auth_config)
    settings = ServerSettings(
        listen=listen,
        group_commit=group_commit,
        group_window_ms=group_window_ms,
        groups_in_flight=groups_in_flight,
        concurrent_calls_max=max_concurrent_calls,
        projections=projections,
        tls=_tls_files(tls_cert, tls_key, tls_client_ca),
        checkpoints=_checkpoint_settings(checkpoint_key, checkpoint_interval_s, checkpoint_dir),
    )
    with store_errors(database_url):
        ledger = Ledger(
            database_url,
            rules=rules,
            currency_scales="adopt" if adopt_currency_scales else "record",
            store_kind="test" if test_clock else "production",
        )
    if ledger.test_clock is not None:
        structlog.get_logger("ledger.cli").warning(
            "serving a test store: an admin may advance its clock", ledger_time=str(ledger.clock())
        )
    # A first-start admin token is written only once the store has opened.
    authenticator = configured or _bootstrapped_admin(ledger, Path(state_dir))
    tune_garbage_collector()

    async def run() -> None:
        # The aio server must be built inside the running event loop.
        try:
            server = LedgerServer(
                ledger, authenticator, telemetry, settings, database_url, metrics=metrics
            )
        except InvalidArgument as error:
            ledger.close()
            raise _bad_server_parameter(error) from None
        await serve_until_signalled(server, _announce(listen))

    asyncio.run(run())


def _metrics_endpoint(listen: str | None) -> MetricsEndpoint | None:
    if listen is None:
        return None
    try:
        return MetricsEndpoint(listen)
    except InvalidArgument as error:
        raise click.BadParameter(error.reason, param_hint="'--metrics-listen'") from None


def _telemetry(exporter: str, metrics: MetricsEndpoint | None) -> Telemetry:
    readers = [metrics.reader] if metrics is not None else []
    try:
        return Telemetry(exporter, extra_readers=readers)
    except InvalidArgument as error:
        raise click.BadParameter(error.reason, param_hint="'--otel-exporter'") from None


def _bad_server_parameter(error: InvalidArgument) -> click.BadParameter:
    """A server that cannot be built, named by the option to change."""
    options = {"listen": "'--listen'", "metrics_listen": "'--metrics-listen'"}
    if error.field in options:
        return click.BadParameter(error.reason, param_hint=options[error.field])
    return click.BadParameter(str(error))


def _configured_clients(auth_config: str | None):
    """The authenticator of an auth config file, or None without one."""
    if auth_config is None:
        return None
    try:
        return load_auth_config(auth_config)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--auth-config'") from None


def _bootstrapped_admin(ledger: Ledger, state_dir: Path):
    """The first-start admin token's authenticator (the token written once, 0600)."""
    try:
        authenticator, token_path = bootstrap_admin(state_dir)
    except InvalidArgument as error:
        ledger.close()
        raise click.BadParameter(str(error), param_hint="'--state-dir'") from None
    if token_path is not None:
        click.echo(f"admin token written to {token_path} (mode 0600); only its hash is kept")
    return authenticator


def _checkpoint_settings(
    key_path: str | None, interval_s: int, directory: str | None
) -> CheckpointSettings | None:
    if key_path is None:
        if directory is not None:
            raise click.BadParameter("needs --checkpoint-key", param_hint="'--checkpoint-dir'")
        return None
    try:
        key = load_signing_key(key_path)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--checkpoint-key'") from None
    return CheckpointSettings(key, interval_s, Path(directory) if directory else None)


def _tls_files(cert: str | None, key: str | None, client_ca: str | None) -> TlsFiles | None:
    if cert is None and key is None:
        if client_ca is not None:
            raise click.BadParameter(
                "needs --tls-cert and --tls-key", param_hint="'--tls-client-ca'"
            )
        return None
    if cert is None or key is None:
        raise click.BadParameter("give both --tls-cert and --tls-key", param_hint="'--tls-cert'")
    return TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca else None)


def _announce(listen: str):
    """Prints where the server listens (first, as scripts wait for that line), then where its
    metrics are served, with the ports actually bound."""
    host = listen.rpartition(":")[0]

    def announce(server: LedgerServer) -> None:
        click.echo(f"listening on {host}:{server.port}")
        if server.metrics is not None:
            click.echo(f"metrics on {server.metrics.url}")

    return announce


@main.group()
def token() -> None:
    """Client tokens for `ledger serve --auth-config`."""


@token.command("new")
@click.option("--name", required=True, help="The client's name, unique in the auth config.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the client may do.")
@click.option("--provider", default=None, help="The game provider id (role game_provider only).")
def token_new(name: str, role: str, provider: str | None) -> None:
    """Prints a new random token once, and the [[clients]] table holding only its hash.

    Give the token to the client and add the table to the auth config: the server never
    sees or keeps the token itself.
    """
    if (role == "game_provider") != (provider is not None):
        raise click.BadParameter(
            "is required for role game_provider and only for it", param_hint="'--provider'"
        )
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    click.echo(f"token (shown once; give it to {name} and keep no copy): {secret}", err=True)
    lines = ["[[clients]]", f"name = {_toml_string(name)}", f'role = "{role}"']
    if provider is not None:
        lines.append(f"provider = {_toml_string(provider)}")
    lines.append(f'token_sha256 = "{token_sha256(secret)}"')
    click.echo("\n".join(lines))


def _toml_string(text: str) -> str:
    """A TOML basic string: its quotes and backslashes escaped, control characters refused."""
    if any(ord(character) < 0x20 or character == "\x7f" for character in text):
        raise click.BadParameter("may not hold control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _register_projection_commands() -> None:
    # Imported here: projections depend on the ledger, never the other way round.
    from ledger.cli.checkpoint import checkpoint_command, checkpoint_key_command
    from ledger.cli.console import console_command
    from ledger.cli.migrate import migrate_command
    from projections.cli import audit_command, project_command
    from projections.export_cli import export_command

    main.add_command(project_command)
    main.add_command(audit_command)
    main.add_command(export_command, "export")
    main.add_command(checkpoint_command)
    main.add_command(checkpoint_key_command)
    main.add_command(console_command)
    main.add_command(migrate_command)


_register_projection_commands()


def _show_environment_variables(command: click.Command) -> None:
    """Every option of every command shows its environment variable in --help."""
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            parameter.show_envvar = True
    for subcommand in getattr(command, "commands", {}).values():
        _show_environment_variables(subcommand)


_show_environment_variables(main)
