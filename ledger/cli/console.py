"""`ledger console`: serves the web console until SIGTERM or Ctrl-C."""

import click
import structlog
import uvicorn

from ledger.api.auth import load_auth_config
from ledger.api.metrics_endpoint import parse_listen
from ledger.api.server import Projections
from ledger.cli.support import config_option, database_url_option, require_store, store_errors
from ledger.console.app import create_app
from ledger.console.context import ConsoleContext
from ledger.core.errors import InvalidArgument
from ledger.core.policy import Rules
from ledger.logs import configure_logging
from ledger.service.application import Ledger
from ledger.store.database import redact


@click.command("console")
@database_url_option(creates_store=False)
@config_option
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT.")
@click.option(
    "--auth-config",
    required=True,
    type=click.Path(dir_okay=False),
    help="The TOML of [[clients]] the gRPC server reads: backoffice, auditor and admin "
    "tokens sign in.",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=False,
    show_default=True,
    help="Mark the session cookie Secure: on when a TLS proxy fronts the console.",
)
@click.option("--log-level", type=click.Choice(("debug", "info", "warning")), default="info")
@click.pass_obj
def console_command(
    rules: Rules,
    database_url: str,
    listen: str,
    auth_config: str,
    secure_cookies: bool,
    log_level: str,
) -> None:
    """Serves the web console: players, statements, accounts, suspense and withdrawals."""
    configure_logging(log_level)
    require_store(database_url, creates_store=False)
    try:
        host, port = parse_listen(listen)
    except InvalidArgument as error:
        raise click.BadParameter(error.reason, param_hint="'--listen'") from None
    try:
        authenticator = load_auth_config(auth_config)
    except InvalidArgument as error:
        raise click.BadParameter(str(error), param_hint="'--auth-config'") from None
    with store_errors(database_url):
        ledger = Ledger(database_url, rules=rules, currency_scales="check", store_kind="either")
        projections = Projections(ledger, database_url, on_lag=lambda lag: None)
    context = ConsoleContext(
        ledger, projections.reads, authenticator, secure_cookies=secure_cookies
    )
    projections.follower.start()
    structlog.get_logger("ledger.console").info(
        "console serving", listen=f"{host}:{port}", store=redact(database_url)
    )
    try:
        uvicorn.run(
            create_app(context),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        projections.close()
        ledger.close()
