"""A PostgreSQL cluster of the test run's own, for the faults a shared server must not see.

Tests that stop, restart or crash PostgreSQL under a running ledger cannot do it to the
machine's server: every other test (and anything else on the machine) would fail with it.
This starts a throwaway cluster from the installed server binaries (`pg_config --bindir`) in
a temporary directory, on a free loopback port, with trust authentication, and removes it
afterwards. Running as root, the server runs as the `postgres` user, since PostgreSQL
refuses to run as root.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
SERVER_USER = "postgres"


class ClusterUnavailable(Exception):
    """The server binaries (or the user to run them as) are missing on this machine."""


def server_bindir() -> Path:
    """Where initdb and pg_ctl are installed, from pg_config."""
    try:
        result = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise ClusterUnavailable(f"pg_config --bindir failed: {error}") from None
    bindir = Path(result.stdout.strip())
    if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
        raise ClusterUnavailable(f"no initdb and pg_ctl in {bindir}")
    return bindir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateCluster:
    """One throwaway PostgreSQL cluster: `start`, `stop`, `restart`, `terminate_backends`."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.is_root = os.geteuid() == 0
        if self.is_root and shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root without runuser")
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        if self.is_root:
            shutil.chown(self.root, SERVER_USER, SERVER_USER)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, program: str, *args: str, timeout_s: float = START_TIMEOUT_S) -> None:
        command = [str(self.bindir / program), *args]
        if self.is_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout}")

    def start(self) -> None:
        # fsync off: the cluster is thrown away, and the faults tested are process deaths.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stops the server: `fast` disconnects clients, `immediate` is a crash."""
        assert mode in ("smart", "fast", "immediate"), mode
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            str(STOP_TIMEOUT_S),
            "stop",
            timeout_s=STOP_TIMEOUT_S,
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates a database and returns its URL."""
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, database: str) -> int:
        """Terminates every other connection to database; returns how many."""
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)

    def is_up(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def remove(self) -> None:
        """Stops the server if it runs, and deletes the cluster's files."""
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
