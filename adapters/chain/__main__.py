"""`ledger-chain`: watch an Ethereum JSON-RPC node for ERC-20 deposits and credit the engine.

    python -m adapters.chain --engine 127.0.0.1:50051 --token-file chain.token \
        --rpc-url http://127.0.0.1:8545 --config chain.toml --state-file chain.sqlite3 --poll-s 2

The config (TOML):

    [chain]
    rail_id = "ethereum"
    rescan_blocks = 12            # reorg horizon K: the last K blocks are re-scanned every poll
    start_block = 0

    [[tokens]]                    # allow-list: only these contracts are credited
    address = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
    currency = "USDT"
    decimals = 6
    confirmations = 30            # credit when head - block + 1 >= confirmations

    [deposit_addresses]           # per-player deposit addresses
    "0x1111111111111111111111111111111111111111" = "player-1"

Every option can also come from an environment variable, `LEDGER_CHAIN_` and the option's
name (`LEDGER_CHAIN_RPC_URL`); `--help` lists them. With `--listen HOST:PORT` it also serves
`GET /healthz` and `GET /metrics` (docs/adapters.md).
"""

import itertools
import sqlite3
import time
from pathlib import Path

import click
import structlog
from web3 import Web3

from adapters.chain.watcher import ChainWatcher, WatcherConfig, WatcherState
from adapters.command_line import (
    EngineOptions,
    InputFile,
    adapter_command,
    engine_client,
    engine_options,
    listen_option,
    usage_error,
)
from adapters.engine_health import EngineHealth, warn_unless_serving
from adapters.http_metrics import HttpMetrics
from adapters.operator_endpoints import operator_app
from adapters.process import BackgroundHttp, exit_cleanly_on_signals
from ledger.logs import configure_logging

NAME = "ledger-chain"
log = structlog.get_logger("adapters.chain")


def _config(path: Path) -> WatcherConfig:
    try:
        return WatcherConfig.load(path)
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as error:
        # TOML syntax (a ValueError), a value of the wrong type, a token missing a key.
        raise usage_error("--config", error) from None


def _poll(watcher: ChainWatcher, polls: object) -> None:
    """One poll; a failure is logged and counted, and the next poll tries again."""
    try:
        watcher.poll()
    except Exception:  # node or engine trouble: log it, wait, poll again
        log.exception("poll_failed")
        polls.add(1, {"outcome": "failed"})
        return
    polls.add(1, {"outcome": "ok"})


@adapter_command(NAME, "LEDGER_CHAIN")
@engine_options("chain")
@click.option("--rpc-url", required=True, help="Ethereum JSON-RPC HTTP URL.")
@click.option("--config", required=True, type=InputFile, help="The watcher's TOML config.")
@click.option(
    "--state-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The watcher's SQLite file.",
)
@click.option("--poll-s", type=click.FloatRange(0), default=2.0, help="Seconds between polls.")
@click.option(
    "--polls-max",
    type=click.IntRange(1),
    default=None,
    show_default="never",
    help="Stop after this many polls.",
)
@listen_option(None, "to serve /healthz and /metrics on", shown="no HTTP server")
def main(
    engine: EngineOptions,
    rpc_url: str,
    config: Path,
    state_file: Path,
    poll_s: float,
    polls_max: int | None,
    listen: str | None,
) -> None:
    """Watch an Ethereum JSON-RPC node for ERC-20 deposits and credit the engine.

    Polls until SIGINT/SIGTERM or --polls-max; a failed poll is logged and retried next time.
    """
    watcher_config = _config(config)
    ledger = engine_client(engine)
    configure_logging()
    health = EngineHealth(ledger.channel, ledger.metadata)
    metrics = HttpMetrics(NAME)
    polls = metrics.meter.create_counter(
        "adapter.chain.polls", unit="{poll}", description="watcher polls by outcome"
    )
    warn_unless_serving(health, engine.engine)
    app = operator_app(health, metrics, engine.engine)
    http = None if listen is None else BackgroundHttp(app, listen)
    state = _state(state_file)
    watcher = ChainWatcher(Web3(Web3.HTTPProvider(rpc_url)), ledger, watcher_config, state)
    exit_cleanly_on_signals()
    try:
        # Unbounded only by request: without --polls-max the watcher runs until a signal.
        for count in range(1, polls_max + 1) if polls_max else itertools.count(1):
            _poll(watcher, polls)
            if count != polls_max:
                time.sleep(poll_s)
    finally:
        if http is not None:
            http.close()
        ledger.close()
        state.close()
        metrics.shutdown()


def _state(path: Path) -> WatcherState:
    try:
        return WatcherState(path)
    except sqlite3.Error as error:
        raise usage_error("--state-file", error) from None


if __name__ == "__main__":
    main()
