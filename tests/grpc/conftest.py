"""A real `ledger serve` process per backend, on a loopback port the OS picks, with one
bearer token per role from an auth config file."""

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from ledger.api.auth import token_sha256
from ledger.client import LedgerClient
from tests.conftest import drop_pg_schema, new_pg_schema

STARTUP_TIMEOUT_S = 30
TOKENS = {
    "admin": ("admin", None),
    "hub88": ("game_provider", "hub88"),
    "payments": ("payments", None),
    "chain": ("chain", None),
    "backoffice": ("backoffice", None),
    "auditor": ("auditor", None),
}


@dataclass
class RunningServer:
    process: subprocess.Popen
    target: str
    tokens: dict[str, str]
    database_url: str
    log: Path | None = None  # the server's standard error: its JSON log lines

    def client(self, name: str = "admin", **options) -> LedgerClient:
        return LedgerClient(self.target, self.tokens[name], **options)


def write_auth_config(path: Path) -> dict[str, str]:
    tokens, lines = {}, []
    for name, (role, provider) in TOKENS.items():
        tokens[name] = f"token-for-{name}-{os.urandom(8).hex()}"
        lines += [
            "[[clients]]",
            f'name = "{name}"',
            f'role = "{role}"',
            f'token_sha256 = "{token_sha256(tokens[name])}"',
        ]
        if provider:
            lines.append(f'provider = "{provider}"')
    path.write_text("\n".join(lines) + "\n")
    return tokens


def start_server(
    database_url: str,
    workdir: Path,
    *extra: str,
    listen: str = "127.0.0.1:0",
    tokens: dict[str, str] | None = None,
) -> RunningServer:
    """Starts `ledger serve`; a restart passes the old server's target and tokens, so its
    clients reconnect to the same address with the same credentials."""
    if tokens is None:
        tokens = write_auth_config(workdir / "auth.toml")
    command = [
        sys.executable,
        "-m",
        "ledger",
        "serve",
        "--listen",
        listen,
        "--database-url",
        database_url,
        "--auth-config",
        str(workdir / "auth.toml"),
        *extra,
    ]
    process, address = start_announcing(command, workdir / "server.log")
    return RunningServer(process, address, tokens, database_url, workdir / "server.log")


# Run in the child instead of the command (Linux): ask for SIGTERM when the test run dies,
# even by SIGKILL, so an interrupted run leaves no server behind holding CPU and ports, then
# become the command (the request survives exec). Not `preexec_fn`: Python code between fork
# and exec can deadlock on a lock another thread of the test run held, and the fault suite
# starts servers while its load threads run (a full run once hung there).
_DIE_WITH_THE_TEST_RUN = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def _dying_with_the_test_run(command: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _DIE_WITH_THE_TEST_RUN, *command]


def start_announcing(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Starts a process that prints `listening on HOST:PORT` first; returns it and HOST:PORT.
    `env`, when given, is the process's whole environment."""
    # Appended: a restarted server keeps the log of the run it follows. The child holds its
    # own descriptor of the log, so ours is closed once the process is started.
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            _dying_with_the_test_run(command),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        line = process.stdout.readline() if selector.select(timeout=STARTUP_TIMEOUT_S) else ""
    if not line.startswith("listening on "):
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()
        raise RuntimeError(f"{command[2]} did not start: {line!r}; see {log_path}")
    return process, line.removeprefix("listening on ").strip()


def stop_process(process: subprocess.Popen) -> int:
    """SIGTERM, then the exit status (a clean drain exits 0)."""
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()
    return status


def stop_server(server: RunningServer) -> int:
    return stop_process(server.process)


def log_lines(server: RunningServer) -> list[dict]:
    """The server's JSON log lines written so far (a line still being written is left out)."""
    assert server.log is not None
    finished = server.log.read_text().split("\n")[:-1]
    return [json.loads(line) for line in finished if line.startswith("{")]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(request, tmp_path_factory) -> Iterator[RunningServer]:
    """A running server on a fresh store, shared by one test module."""
    workdir = tmp_path_factory.mktemp("server")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir}/ledger.sqlite3"
    else:
        url = new_pg_schema(request.getfixturevalue("pg_database"))
    running = start_server(url, workdir)
    yield running
    assert stop_server(running) == 0
    if request.param == "postgres":
        drop_pg_schema(url)


@pytest.fixture(scope="module")
def channel(server) -> Iterator[grpc.Channel]:
    """A plain channel to the module's server, for raw calls (`tests.grpc.raw`)."""
    with grpc.insecure_channel(server.target) as opened:
        yield opened
