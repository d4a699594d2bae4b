"""The command line every adapter shares, on click like `ledger`: the engine options, the
listen option, `--version`, and errors said in one line.

Rules for every adapter command:
- Each option can come from an environment variable named after the adapter
  (`LEDGER_HUB88_ENGINE`, `LEDGER_PAYMENTS_TOKEN_FILE`, `LEDGER_CHAIN_RPC_URL`...); --help
  shows it beside the option's default.
- No traceback reaches a user: a malformed option, or a file that cannot be read or parsed,
  is a usage error (exit status 2) naming the option; an address that cannot be bound is a
  one-line error (exit status 1).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from adapters import limits
from ledger.client import AsyncLedgerClient, LedgerClient

PACKAGE = "casino-ledger"
ENGINE_TIMEOUT_S = 5.0  # per engine call, before the client's retries
ENGINE_RETRIES = 5

# gRPC's first reconnect waits `initial`; both are capped so a returning engine is found soon.
RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", limits.engine_reconnect_backoff_max_ms),
    ("grpc.max_reconnect_backoff_ms", limits.engine_reconnect_backoff_max_ms),
)

# An existing regular file; read by the command, which reports what is wrong with its content.
InputFile = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@dataclass(frozen=True)
class EngineOptions:
    """Where the engine is and how to reach it, as the engine options gave it."""

    engine: str
    token_file: Path
    engine_timeout_s: float
    engine_retries: int
    engine_tls_ca: Path | None
    engine_tls_cert: Path | None
    engine_tls_key: Path | None


def adapter_command(name: str, environment_prefix: str) -> Callable:
    """A click command named `name`, with --version, whose options show their environment
    variable (`{environment_prefix}_{OPTION}`) and default in --help."""

    def decorate(function: Callable) -> click.Command:
        settings = {"auto_envvar_prefix": environment_prefix, "show_default": True}
        command = click.command(name=name, context_settings=settings)(function)
        command = click.version_option(package_name=PACKAGE, prog_name=name)(command)
        for parameter in command.params:
            if isinstance(parameter, click.Option) and not parameter.is_eager:
                parameter.show_envvar = True  # not --version and --help, read from argv only
        return command

    return decorate


def _engine_options(role: str) -> list[Callable]:
    tls_file = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
    return [
        click.option(
            "--engine", required=True, metavar="HOST:PORT", help="The engine's gRPC address."
        ),
        click.option(
            "--token-file",
            required=True,
            type=InputFile,
            help=f"File holding the engine bearer token of a {role} client.",
        ),
        click.option(
            "--engine-timeout-s",
            type=click.FloatRange(0, min_open=True),
            default=ENGINE_TIMEOUT_S,
            help="Deadline of one engine call.",
        ),
        click.option(
            "--engine-retries",
            type=click.IntRange(1),
            default=ENGINE_RETRIES,
            help="Attempts per engine call on UNAVAILABLE / DEADLINE_EXCEEDED.",
        ),
        click.option(
            "--engine-tls-ca",
            type=tls_file,
            default=None,
            help="CA bundle the engine's certificate must chain to: turns on TLS.",
        ),
        click.option(
            "--engine-tls-cert",
            type=tls_file,
            default=None,
            help="Client certificate (PEM) for an engine that asks for mutual TLS.",
        ),
        click.option(
            "--engine-tls-key",
            type=tls_file,
            default=None,
            help="The client certificate's private key (PEM).",
        ),
    ]


def engine_options(role: str) -> Callable:
    """The engine options; the command gets them as one `engine: EngineOptions` argument."""
    names = EngineOptions.__dataclass_fields__

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def with_engine(**arguments: object) -> object:
            engine = EngineOptions(**{name: arguments.pop(name) for name in names})
            return function(engine=engine, **arguments)

        for option in reversed(_engine_options(role)):
            with_engine = option(with_engine)
        return with_engine

    return decorate


def listen_option(default: str | None, purpose: str, shown: str | None = None) -> Callable:
    """--listen HOST:PORT (port 0 lets the OS pick one); `shown` describes a None default."""
    return click.option(
        "--listen",
        type=ListenAddress(),
        default=default,
        show_default=shown if default is None else True,
        help=f"HOST:PORT {purpose}; port 0 picks one.",
    )


class ListenAddress(click.ParamType):
    """HOST:PORT, an IPv6 host in brackets, a port up to 65535."""

    name = "HOST:PORT"

    def convert(self, value, param, ctx) -> str:
        host, separator, port = str(value).rpartition(":")
        if not separator or not host.strip("[]") or not port.isdigit() or int(port) > 65_535:
            self.fail(f"must be HOST:PORT with a port up to 65535, not {value!r}", param, ctx)
        return str(value)


def read_secret(path: Path, option: str) -> bytes:
    """A token or secret file's content without surrounding whitespace; never empty."""
    secret = read_bytes(path, option).strip()
    if not secret:
        raise click.BadParameter(f"{path} is empty", param_hint=f"'{option}'")
    return secret


def read_bytes(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise click.BadParameter(
            f"cannot read {path}: {reason}", param_hint=f"'{option}'"
        ) from None


def engine_client(options: EngineOptions, *, auto_batch: bool = True) -> LedgerClient:
    """The engine client the engine options describe (TLS when --engine-tls-ca is given)."""
    return LedgerClient(**_client_arguments(options), auto_batch=auto_batch)


def async_engine_client(options: EngineOptions) -> Callable[[], AsyncLedgerClient]:
    """The asyncio form of `engine_client`, auto-batching, as a factory to call inside the
    server's event loop; the options and their files are checked and read now."""
    arguments = _client_arguments(options)
    return functools.partial(AsyncLedgerClient, **arguments, auto_batch=True)


def _client_arguments(options: EngineOptions) -> dict:
    token = read_secret(options.token_file, "--token-file").decode(errors="replace")
    if (options.engine_tls_cert is None) != (options.engine_tls_key is None):
        raise click.BadParameter(
            "give both --engine-tls-cert and --engine-tls-key", param_hint="'--engine-tls-cert'"
        )
    if options.engine_tls_cert is not None and options.engine_tls_ca is None:
        raise click.BadParameter(
            "mutual TLS needs --engine-tls-ca too", param_hint="'--engine-tls-cert'"
        )
    return {
        "target": options.engine,
        "token": token,
        **_tls_material(options),
        "timeout_s": options.engine_timeout_s,
        "retry_count_max": options.engine_retries,
        "channel_options": RECONNECT_OPTIONS,
    }


def _tls_material(options: EngineOptions) -> dict[str, bytes]:
    files = {
        "root_certificates": (options.engine_tls_ca, "--engine-tls-ca"),
        "certificate_chain": (options.engine_tls_cert, "--engine-tls-cert"),
        "private_key": (options.engine_tls_key, "--engine-tls-key"),
    }
    return {
        name: read_bytes(path, option) for name, (path, option) in files.items() if path is not None
    }


def usage_error(option: str, error: Exception) -> click.BadParameter:
    """A file an option names that could not be parsed, as a usage error naming the option."""
    return click.BadParameter(
        " ".join(str(error).split()) or type(error).__name__, param_hint=f"'{option}'"
    )
