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
"""

import argparse
import time
from pathlib import Path

import structlog
from web3 import Web3

from adapters.chain.watcher import ChainWatcher, WatcherConfig, WatcherState
from adapters.process import add_engine_arguments, engine_client, exit_cleanly_on_signals
from ledger.logs import configure_logging

log = structlog.get_logger("adapters.chain")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ledger-chain", description=__doc__.splitlines()[0])
    add_engine_arguments(parser, "chain")
    parser.add_argument("--rpc-url", required=True, help="Ethereum JSON-RPC HTTP URL")
    parser.add_argument("--config", required=True, type=Path, help="the watcher's TOML config")
    parser.add_argument("--state-file", required=True, type=Path, help="the watcher's SQLite file")
    parser.add_argument("--poll-s", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--polls-max", type=int, default=None, help="stop after this many polls")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Poll until SIGINT/SIGTERM or --polls-max; a failed poll is logged and retried next time."""
    arguments = _arguments(argv)
    configure_logging()
    config = WatcherConfig.load(arguments.config)
    w3 = Web3(Web3.HTTPProvider(arguments.rpc_url))
    ledger = engine_client(arguments)
    state = WatcherState(arguments.state_file)
    watcher = ChainWatcher(w3, ledger, config, state)
    exit_cleanly_on_signals()
    polls = 0
    try:
        while arguments.polls_max is None or polls < arguments.polls_max:
            try:
                watcher.poll()
            except Exception:  # node or engine trouble: log it, wait, poll again
                log.exception("poll_failed")
            polls += 1
            if arguments.polls_max is None or polls < arguments.polls_max:
                time.sleep(arguments.poll_s)
    finally:
        ledger.close()
        state.close()


if __name__ == "__main__":
    main()
