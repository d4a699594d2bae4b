"""Chain watcher against a real in-process EVM (eth-tester + py-evm through web3) and a real
engine process (gRPC, sqlite store). Most tests run the watcher in-process and call `poll()`;
one runs `python -m adapters.chain` as its own process against an HTTP JSON-RPC endpoint.

Each test has its own chain, its own players and watcher state file; the engine process is
shared by the module. Balances and postings are read with the admin token.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import EthereumTesterProvider, Web3

from adapters.chain.watcher import (
    ChainWatcher,
    DeepReorg,
    WatcherConfig,
    WatcherState,
    units_to_decimal,
)
from tests.adapters import evm_token
from tests.adapters.conftest import postings, self_exclude
from tests.adapters.json_rpc_node import json_rpc_node
from tests.grpc.conftest import RunningServer

USDT_CONFIRMATIONS = 3
ETH_CONFIRMATIONS = 2
RESCAN_BLOCKS = 10


@dataclass
class Chain:
    w3: Web3
    tester: object  # eth_tester.EthereumTester: snapshots and mining
    sender: str
    usdt: str  # allow-listed, 6 decimals, currency USDT
    eth18: str  # allow-listed, 18 decimals, currency ETH stands in
    rogue: str  # a second copy of the same bytecode, not allow-listed
    players: dict[str, str]  # player id -> deposit address (lower case)
    watcher: ChainWatcher
    state: WatcherState

    def transfer(self, token: str, to: str, value: int, data: bytes | None = None) -> str:
        calldata = evm_token.transfer_calldata(to, value) if data is None else data
        tx = self.w3.eth.send_transaction(
            {"from": self.sender, "to": token, "data": calldata, "gas": 100_000}
        )
        return "0x" + bytes(tx).hex()

    def mine(self, count: int) -> None:
        self.tester.mine_blocks(count)

    def reorganise(self, snapshot, on_new_branch=lambda: None) -> None:
        """Reverts to snapshot and mines a branch two blocks longer than the current chain;
        `on_new_branch` runs first on it, where a test needs the branch to differ early."""
        old_head = self.w3.eth.block_number
        self.tester.revert_to_snapshot(snapshot)
        on_new_branch()
        self.mine(old_head - self.w3.eth.block_number + 2)
        assert self.w3.eth.block_number > old_head


@pytest.fixture
def chain(engine, tmp_path) -> Iterator[Chain]:
    """A fresh EVM with three token contracts and a watcher on the shared engine."""
    w3 = Web3(EthereumTesterProvider())
    sender = w3.eth.accounts[0]
    usdt, eth18, rogue = (evm_token.deploy(w3, sender) for _ in range(3))
    run = uuid.uuid4().hex[:8]
    players = {f"p-{run}-{i}": "0x" + os.urandom(20).hex() for i in range(2)}
    config = WatcherConfig.from_dict(
        {
            "chain": {"rescan_blocks": RESCAN_BLOCKS},
            "tokens": [
                {
                    "address": usdt,
                    "currency": "USDT",
                    "decimals": 6,
                    "confirmations": USDT_CONFIRMATIONS,
                },
                {
                    "address": eth18,
                    "currency": "ETH",
                    "decimals": 18,
                    "confirmations": ETH_CONFIRMATIONS,
                },
            ],
            "deposit_addresses": {address: player for player, address in players.items()},
        }
    )
    state = WatcherState(tmp_path / "chain.sqlite3")
    ledger = engine.client("chain")
    watcher = ChainWatcher(w3, ledger, config, state)
    yield Chain(
        w3, w3.provider.ethereum_tester, sender, usdt, eth18, rogue, players, watcher, state
    )
    ledger.close()
    state.close()


def cash(engine: RunningServer, player: str, currency: str) -> str:
    with engine.client() as admin:
        balances, _ = admin.get_balance(player_id=player, currency=currency)
    return balances.cash


def test_credit_only_after_confirmations_and_exactly_once(engine, chain):
    """A deposit waits for N confirmations, is credited once, and re-polling changes nothing."""
    player, address = next(iter(chain.players.items()))
    tx = chain.transfer(chain.usdt, address, 12_345_678)  # 12.345678 USDT
    for _ in range(USDT_CONFIRMATIONS - 1):
        assert chain.watcher.poll().credited == []
        assert cash(engine, player, "USDT") == "0"
        chain.mine(1)
    result = chain.watcher.poll()
    assert result.credited == [f"eth:{tx}:0"]
    assert cash(engine, player, "USDT") == "12.345678"
    for _ in range(3):
        chain.mine(1)
        assert chain.watcher.poll().credited == []
    assert cash(engine, player, "USDT") == "12.345678"
    assert len(chain.state.all_credits()) == 1


def test_non_allow_listed_token_is_ignored(engine, chain):
    """Transfers of the same bytecode at a non-allow-listed address are never credited."""
    player, address = next(iter(chain.players.items()))
    chain.transfer(chain.rogue, address, 5_000_000)
    chain.mine(USDT_CONFIRMATIONS + 1)
    assert chain.watcher.poll().credited == []
    assert chain.state.all_credits() == []
    assert cash(engine, player, "USDT") == "0"


def test_unknown_recipient_is_held_in_suspense(engine, chain):
    """A transfer to an address no player owns is held in suspense:USDT, no player credited."""
    stranger = "0x" + os.urandom(20).hex()
    tx = chain.transfer(chain.usdt, stranger, 7_000_000)
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == [f"eth:{tx}:0"]
    assert postings(engine, f"eth:{tx}:0") == {"chain:ethereum:USDT": "-7", "suspense:USDT": "7"}
    assert [c["player_id"] for c in chain.state.all_credits()] == [""]


def test_a_refused_deposit_is_held_in_suspense_not_dropped(engine, chain):
    """A self-excluded player's on-chain deposit is refused by the engine and held instead."""
    player, address = next(iter(chain.players.items()))
    self_exclude(engine, player, "USDT")
    tx = chain.transfer(chain.usdt, address, 3_000_000)
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == [f"eth:{tx}:0:suspense"]
    assert cash(engine, player, "USDT") == "0"
    assert postings(engine, f"eth:{tx}:0:suspense") == {
        "chain:ethereum:USDT": "-3",
        "suspense:USDT": "3",
    }


def test_reorged_suspense_is_returned_to_the_chain(engine, chain):
    """Money held in suspense whose log leaves the canonical chain is returned, once."""
    snapshot = chain.tester.take_snapshot()
    tx = chain.transfer(chain.usdt, "0x" + os.urandom(20).hex(), 4_000_000)
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == [f"eth:{tx}:0"]
    chain.reorganise(snapshot)
    assert chain.watcher.poll().reversed == [f"eth:{tx}:0:reorg"]
    assert postings(engine, f"eth:{tx}:0:reorg") == {
        "suspense:USDT": "-4",
        "chain:ethereum:USDT": "4",
    }
    chain.mine(1)
    assert chain.watcher.poll().reversed == []


def test_failed_transaction_is_ignored(engine, chain):
    """A reverted transaction (wrong selector, receipt status 0) is mined but not credited."""
    player, address = next(iter(chain.players.items()))
    bad = b"\xde\xad\xbe\xef" + evm_token.transfer_calldata(address, 9_000_000)[4:]
    tx = chain.transfer(chain.usdt, address, 0, data=bad)
    assert chain.w3.eth.get_transaction_receipt(tx)["status"] == 0
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == []
    assert cash(engine, player, "USDT") == "0"


def test_reorg_after_credit_is_reversed_once(engine, chain):
    """A credited deposit orphaned by a longer branch without it is reversed exactly once."""
    player, address = next(iter(chain.players.items()))
    snapshot = chain.tester.take_snapshot()
    tx = chain.transfer(chain.usdt, address, 50_000_000)
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == [f"eth:{tx}:0"]
    assert cash(engine, player, "USDT") == "50"
    chain.reorganise(snapshot)  # a longer branch, without the deposit
    result = chain.watcher.poll()
    assert result.reversed == [f"eth:{tx}:0:reorg"] and result.credited == []
    assert cash(engine, player, "USDT") == "0"
    chain.mine(2)
    assert chain.watcher.poll().reversed == []
    assert cash(engine, player, "USDT") == "0"
    assert [c["reversed"] for c in chain.state.all_credits()] == [1]


def test_a_reorg_deeper_than_the_rescan_window_stops_the_watcher(engine, chain):
    """A branch replacing blocks below the window raises DeepReorg and credits nothing more."""
    player, address = next(iter(chain.players.items()))
    snapshot = chain.tester.take_snapshot()
    chain.mine(RESCAN_BLOCKS + 2)
    chain.watcher.poll()
    # The other branch carries a transfer, so it differs from its first block on.
    chain.reorganise(snapshot, lambda: chain.transfer(chain.usdt, address, 1_000_000))
    with pytest.raises(DeepReorg):
        chain.watcher.poll()
    assert chain.state.all_credits() == []
    assert cash(engine, player, "USDT") == "0"


def test_reorg_with_reinclusion_only_moves_the_block(engine, chain):
    """A credited deposit re-included in a different block is neither reversed nor re-credited."""
    player, address = next(iter(chain.players.items()))
    snapshot = chain.tester.take_snapshot()
    tx = chain.transfer(chain.usdt, address, 1_500_000)
    chain.mine(USDT_CONFIRMATIONS)
    assert chain.watcher.poll().credited == [f"eth:{tx}:0"]
    before = chain.state.all_credits()[0]
    raw = chain.w3.eth.get_transaction(tx)
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(2)  # the branch differs: the same transaction lands two blocks later
    assert chain.transfer(chain.usdt, address, 1_500_000) == tx  # same sender, nonce, fields
    assert raw["nonce"] == chain.w3.eth.get_transaction(tx)["nonce"]
    chain.mine(USDT_CONFIRMATIONS)
    result = chain.watcher.poll()
    assert result.reversed == [] and result.credited == [] and result.moved == [f"eth:{tx}:0"]
    after = chain.state.all_credits()[0]
    assert after["block_number"] == before["block_number"] + 2
    assert after["block_hash"] != before["block_hash"]
    assert cash(engine, player, "USDT") == "1.5"


def test_eighteen_decimal_amounts_beyond_64_bits_are_exact(engine, chain):
    """25 * 10**18 + 1 base units of an 18-decimal token credit exactly 25.000000000000000001."""
    player, address = list(chain.players.items())[1]
    value = 25 * 10**18 + 1
    assert value > 2**64
    chain.transfer(chain.eth18, address, value)
    chain.mine(ETH_CONFIRMATIONS)
    assert len(chain.watcher.poll().credited) == 1
    assert cash(engine, player, "ETH") == "25.000000000000000001"
    assert units_to_decimal(25 * 10**18, 18) == "25"


def test_cli_options_and_bounded_run(engine, tmp_path):
    """The CLI names its options and, with --polls-max 2 and an unreachable node, logs and stops."""
    import json
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "adapters.chain", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout
    for option in (
        "--engine",
        "--token-file",
        "--rpc-url",
        "--config",
        "--state-file",
        "--poll-s",
        "--polls-max",
    ):
        assert option in out
    (tmp_path / "chain.token").write_text(engine.tokens["chain"])
    (tmp_path / "chain.toml").write_text("[chain]\nrescan_blocks = 5\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.chain",
            "--engine",
            engine.target,
            "--token-file",
            str(tmp_path / "chain.token"),
            "--rpc-url",
            "http://127.0.0.1:1",
            "--config",
            str(tmp_path / "chain.toml"),
            "--state-file",
            str(tmp_path / "s.sqlite3"),
            "--poll-s",
            "0.1",
            "--polls-max",
            "2",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line)["event"] for line in run.stderr.splitlines() if line.startswith("{")]
    assert events == ["poll_failed", "poll_failed"]


def test_the_watcher_process_credits_through_a_json_rpc_node(engine, chain, tmp_path):
    """`python -m adapters.chain` as its own process, over HTTP JSON-RPC, credits once."""
    player, address = next(iter(chain.players.items()))
    chain.transfer(chain.usdt, address, 2_500_000)
    chain.mine(USDT_CONFIRMATIONS)
    config = tmp_path / "chain.toml"
    config.write_text(
        f"[chain]\nrescan_blocks = {RESCAN_BLOCKS}\n"
        f'[[tokens]]\naddress = "{chain.usdt}"\ncurrency = "USDT"\ndecimals = 6\n'
        f"confirmations = {USDT_CONFIRMATIONS}\n"
        f'[deposit_addresses]\n"{address}" = "{player}"\n'
    )
    token = tmp_path / "chain.token"
    token.write_text(engine.tokens["chain"])
    with json_rpc_node(chain.w3) as url:
        command = [
            sys.executable,
            "-m",
            "adapters.chain",
            "--engine",
            engine.target,
            "--token-file",
            str(token),
            "--rpc-url",
            url,
            "--config",
            str(config),
            "--state-file",
            str(tmp_path / "process.sqlite3"),
            "--poll-s",
            "0.1",
            "--polls-max",
            "3",
        ]
        for _ in range(2):  # the second run polls the same chain again: nothing more
            subprocess.run(command, check=True, timeout=60, capture_output=True)
    balances, _ = engine.client().get_balance(player_id=player, currency="USDT")
    assert balances.cash == "2.5"
