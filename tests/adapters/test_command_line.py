"""The adapters' command lines (click, like `ledger`): environment variables and defaults in
--help, options read from the environment, --version, and errors without a traceback."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest

from adapters.chain.__main__ import main as chain_main
from adapters.hub88.__main__ import main as hub88_main
from adapters.payments.__main__ import main as payments_main

ROOT = Path(__file__).parents[2]
COMMANDS = {
    "adapters.hub88": (hub88_main, "LEDGER_HUB88"),
    "adapters.payments": (payments_main, "LEDGER_PAYMENTS"),
    "adapters.chain": (chain_main, "LEDGER_CHAIN"),
}
ADAPTER_ENVIRONMENT = ("LEDGER_HUB88_", "LEDGER_PAYMENTS_", "LEDGER_CHAIN_")


def run(module: str, *arguments: str, environment: dict[str, str] | None = None):
    """Runs `python -m module arguments` to its end, with no adapter variables inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ADAPTER_ENVIRONMENT)}
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=clean | (environment or {}),
        check=False,
    )


def dead_engine() -> str:
    """An address nothing listens on once the probe socket closes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("module", COMMANDS)
def test_help_names_every_option_with_its_environment_variable(module):
    """--help shows each option's environment variable: the adapter's prefix and the
    option's name (LEDGER_PAYMENTS_CURRENCY for --currency)."""
    command, prefix = COMMANDS[module]
    shown = run(module, "--help")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.is_eager:
            assert parameter.opts[0] in text
            named = parameter.opts[0].removeprefix("--").replace("-", "_").upper()
            assert f"{prefix}_{named}" in text, parameter.name


@pytest.mark.parametrize("module", COMMANDS)
def test_help_shows_the_defaults(module):
    """--help shows the shared engine defaults and the engine option as required."""
    text = " ".join(run(module, "--help").stdout.split())
    assert "default: 5.0" in text  # --engine-timeout-s
    assert "default: 5;" in text  # --engine-retries
    assert f"{COMMANDS[module][1]}_ENGINE; required]" in text


@pytest.mark.parametrize("module", COMMANDS)
def test_version_names_the_command(module):
    """--version prints the command's name and the package version."""
    shown = run(module, "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{COMMANDS[module][0].name}, version ")


def test_environment_variables_set_options(tmp_path):
    """Every chain option can come from LEDGER_CHAIN_*: one poll (POLLS_MAX=1), then exit 0."""
    (tmp_path / "chain.token").write_text("token")
    (tmp_path / "chain.toml").write_text("[chain]\nrescan_blocks = 5\n")
    environment = {
        "LEDGER_CHAIN_ENGINE": dead_engine(),
        "LEDGER_CHAIN_TOKEN_FILE": str(tmp_path / "chain.token"),
        "LEDGER_CHAIN_RPC_URL": "http://127.0.0.1:1",
        "LEDGER_CHAIN_CONFIG": str(tmp_path / "chain.toml"),
        "LEDGER_CHAIN_STATE_FILE": str(tmp_path / "chain.sqlite3"),
        "LEDGER_CHAIN_POLLS_MAX": "1",
    }
    finished = run("adapters.chain", environment=environment)
    assert finished.returncode == 0, finished.stderr
    assert '"poll_failed"' in finished.stderr
    assert finished.stderr.count('"poll_failed"') == 1


def _files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "token": "token",
        "secret": "secret",
        "empty": "  \n",
        "garbage": "not a pem\n",
        "games": "[games]\nslot = 'slots'\n",
        "bad_games": "[games]\n'a b' = 'slots'\n",
        "bad_toml": "[chain\n",
        "bad_chain": "[[tokens]]\naddress = '0x1'\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return {name: tmp_path / name for name in files}


def _hub88(files: dict[str, Path], **replaced: str) -> list[str]:
    options = {
        "--engine": "127.0.0.1:1",
        "--token-file": str(files["token"]),
        "--public-key": str(files["garbage"]),
        "--games": str(files["games"]),
        "--operator-token-file": str(files["token"]),
        "--sessions-file": str(files["token"].parent / "s.sqlite3"),
    }
    options.update(replaced)
    return [part for pair in options.items() for part in pair]


def _payments(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--engine",
        "127.0.0.1:1",
        "--token-file",
        str(files["token"]),
        "--secret-file",
        str(files["secret"]),
        "--state-file",
        str(files["token"].parent / "p.sqlite3"),
        *extra,
    ]


def _chain(files: dict[str, Path], config: str, *extra: str) -> list[str]:
    return [
        "--engine",
        "127.0.0.1:1",
        "--token-file",
        str(files["token"]),
        "--rpc-url",
        "http://127.0.0.1:1",
        "--config",
        str(files[config]),
        "--state-file",
        str(files["token"].parent / "c.sqlite3"),
        "--polls-max",
        "1",
        *extra,
    ]


BAD_INVOCATIONS = {
    "hub88 public key not PEM": ("adapters.hub88", "--public-key", lambda f: _hub88(f)),
    "hub88 games not identifiers": (
        "adapters.hub88",
        "--games",
        lambda f: _hub88(f, **{"--games": str(f["bad_games"])}),
    ),
    "hub88 games not TOML": (
        "adapters.hub88",
        "--games",
        lambda f: _hub88(f, **{"--games": str(f["bad_toml"])}),
    ),
    "hub88 session ttl 0": (
        "adapters.hub88",
        "--session-ttl-s",
        lambda f: [*_hub88(f), "--session-ttl-s", "0"],
    ),
    "payments token file missing": (
        "adapters.payments",
        "--token-file",
        lambda f: [*_payments(f), "--token-file", "/nonexistent"],
    ),
    "payments token file empty": (
        "adapters.payments",
        "--token-file",
        lambda f: [*_payments(f), "--token-file", str(f["empty"])],
    ),
    "payments secret empty": (
        "adapters.payments",
        "--secret-file",
        lambda f: [*_payments(f), "--secret-file", str(f["empty"])],
    ),
    "payments retries 0": (
        "adapters.payments",
        "--engine-retries",
        lambda f: _payments(f, "--engine-retries", "0"),
    ),
    "payments listen": (
        "adapters.payments",
        "--listen",
        lambda f: _payments(f, "--listen", "localhost"),
    ),
    "payments tls cert alone": (
        "adapters.payments",
        "--engine-tls-cert",
        lambda f: _payments(f, "--engine-tls-cert", str(f["token"])),
    ),
    "chain config not TOML": ("adapters.chain", "--config", lambda f: _chain(f, "bad_toml")),
    "chain config incomplete": ("adapters.chain", "--config", lambda f: _chain(f, "bad_chain")),
    "chain unknown option": ("adapters.chain", "--bogus", lambda f: _chain(f, "games", "--bogus")),
}


@pytest.mark.parametrize("case", BAD_INVOCATIONS)
def test_bad_options_and_files_are_usage_errors_naming_the_option(tmp_path, case):
    """A bad option, or a file that cannot be read or parsed, exits 2 naming the option,
    with no traceback."""
    module, option, arguments = BAD_INVOCATIONS[case]
    finished = run(module, *arguments(_files(tmp_path)))
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr
    assert f"'{option}'" in finished.stderr or f"{option}" in finished.stderr.splitlines()[-1]


def test_an_address_in_use_is_a_one_line_error(tmp_path):
    """--listen on a port already bound exits 1 with one line naming the address."""
    files = _files(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        finished = run("adapters.payments", *_payments(files, "--listen", listen))
    assert finished.returncode == 1, finished.stderr
    assert f"Error: cannot listen on {listen}" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_several_currencies_come_from_one_variable(tmp_path):
    """LEDGER_PAYMENTS_CURRENCY holds several CODE:SCALE separated by spaces, each checked."""
    files = _files(tmp_path)
    environment = {"LEDGER_PAYMENTS_CURRENCY": "BTC:8 USDC"}
    finished = run("adapters.payments", *_payments(files), environment=environment)
    assert finished.returncode == 2, finished.stderr
    assert "'--currency' (env var: 'LEDGER_PAYMENTS_CURRENCY'): 'USDC' is not" in finished.stderr
