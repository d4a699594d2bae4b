"""Poll an Ethereum JSON-RPC node for ERC-20 `Transfer` logs and credit them through the engine.

Per poll (`ChainWatcher.poll`):

1. Read the head. Scan `[min(cursor + 1, head - rescan_blocks + 1), head]` with one
   `eth_getLogs` filtered by the allow-listed token addresses and the Transfer topic. The
   cursor is the highest block whose logs are all past every token's confirmation threshold, so
   logs still waiting for confirmations are scanned again; the last `rescan_blocks` blocks are
   always re-scanned (the reorg horizon).
2. Reorg check: every credited, unreversed log whose block lies in that window (or above the
   head) is compared with the canonical block hash at its height. If the hash changed and the same
   log (tx hash + its position inside the transaction) is in the canonical logs of the window, only
   the stored block reference changes; if it is absent, `ReverseDeposit` is posted once
   (key `eth:{tx}:{logindex}:reorg`), or `ReturnSuspense` for money held in suspense, and the
   credit is marked reversed.
3. Credit each log with `head - block + 1 >= confirmations(token)` not yet credited, unless its
   transaction failed (receipt status 0). The recipient is mapped to a player through the
   configured deposit addresses. Key `eth:{tx}:{logindex}` with the block-wide log index at
   first credit. Money that arrived but cannot be credited to a player is never dropped: an
   unknown recipient is held in `suspense:{ccy}` (`HoldInSuspense`, the item named by the
   deposit key), and a deposit the engine refuses (a self-excluded player, a deposit limit) is
   held there too (item `{deposit key}:suspense`), for operations to attribute or return.

Reorgs deeper than the re-scan window fail closed: each poll stores the hash of the block just
below the next window (the anchor); if a later poll finds another block at that height, the
history the watcher already settled has changed, so it raises `DeepReorg` and credits nothing
until an operator has looked (widen `rescan_blocks`, re-scan from an earlier `start_block`).

The adapter's SQLite state holds the credits, the cursor and the anchor; it is written only
after the engine answered, and the engine's idempotency makes a replay after a crash harmless.
A log re-included after its credit was reversed is logged (`reincluded_after_reversal`) for
manual review and not credited again.
"""

import sqlite3
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from eth_utils import keccak, to_checksum_address

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
RAIL = "chain"
CREDITED_OUTCOMES = ("OK", "DUPLICATE")
SUSPENSE = ""  # the player id stored for a credit held in suspense

log = structlog.get_logger("adapters.chain")


class DeepReorg(Exception):
    """The chain changed below the re-scan window: credits there can no longer be checked."""


@dataclass(frozen=True)
class Token:
    address: str  # checksum address of the allow-listed contract
    currency: str
    decimals: int
    confirmations: int


@dataclass(frozen=True)
class WatcherConfig:
    tokens: tuple[Token, ...]
    deposit_addresses: dict[str, str]  # lower-case address -> player id
    rescan_blocks: int = 12
    start_block: int = 0
    rail_id: str = "ethereum"
    by_address: dict[str, Token] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rescan_blocks < 1:
            raise ValueError("rescan_blocks must be at least 1")
        for token in self.tokens:
            if token.confirmations < 1 or token.decimals < 0:
                raise ValueError(f"bad token settings for {token.address}")
        object.__setattr__(self, "by_address", {t.address.lower(): t for t in self.tokens})

    @classmethod
    def from_dict(cls, data: dict) -> "WatcherConfig":
        chain = data.get("chain", {})
        tokens = tuple(
            Token(
                to_checksum_address(t["address"]),
                t["currency"],
                int(t["decimals"]),
                int(t["confirmations"]),
            )
            for t in data.get("tokens", [])
        )
        addresses = {a.lower(): p for a, p in data.get("deposit_addresses", {}).items()}
        return cls(
            tokens=tokens,
            deposit_addresses=addresses,
            rescan_blocks=int(chain.get("rescan_blocks", 12)),
            start_block=int(chain.get("start_block", 0)),
            rail_id=chain.get("rail_id", "ethereum"),
        )

    @classmethod
    def load(cls, path: Path) -> "WatcherConfig":
        return cls.from_dict(tomllib.loads(path.read_text()))


def units_to_decimal(value: int, decimals: int) -> str:
    """Exact decimal string of an integer amount in base units (no float, any size)."""
    if value < 0:
        raise ValueError("negative amount")
    whole, fraction = divmod(value, 10**decimals)
    if decimals == 0 or fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:0{decimals}d}".rstrip("0")


def _hex(value) -> str:
    return "0x" + bytes(value).hex()


class WatcherState:
    """The adapter's own SQLite file: credited logs and the scan cursor."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path))
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS credits (
                tx_hash TEXT NOT NULL, tx_log_position INTEGER NOT NULL,
                log_index INTEGER NOT NULL, block_hash TEXT NOT NULL,
                block_number INTEGER NOT NULL, player_id TEXT NOT NULL,
                currency TEXT NOT NULL, amount TEXT NOT NULL, deposit_key TEXT NOT NULL,
                outcome TEXT NOT NULL, reversed INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (tx_hash, tx_log_position));
            CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1),
                                               block INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS anchor (id INTEGER PRIMARY KEY CHECK (id = 1),
                                               block INTEGER NOT NULL, hash TEXT NOT NULL);
            """
        )

    def cursor(self) -> int | None:
        row = self._db.execute("SELECT block FROM cursor").fetchone()
        return None if row is None else row[0]

    def set_cursor(self, block: int) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO cursor (id, block) VALUES (1, ?)", (block,))

    def anchor(self) -> tuple[int, str] | None:
        row = self._db.execute("SELECT block, hash FROM anchor").fetchone()
        return None if row is None else (row[0], row[1])

    def set_anchor(self, block: int, block_hash: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO anchor (id, block, hash) VALUES (1, ?, ?)",
                (block, block_hash),
            )

    def credit(self, tx_hash: str, position: int) -> dict | None:
        cursor = self._db.execute(
            "SELECT * FROM credits WHERE tx_hash = ? AND tx_log_position = ?", (tx_hash, position)
        )
        row = cursor.fetchone()
        return (
            None if row is None else dict(zip([c[0] for c in cursor.description], row, strict=True))
        )

    def credits_from(self, block: int) -> list[dict]:
        cursor = self._db.execute(
            "SELECT * FROM credits WHERE reversed = 0 AND outcome IN ('OK', 'DUPLICATE')"
            " AND block_number >= ? ORDER BY block_number",
            (block,),
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def all_credits(self) -> list[dict]:
        cursor = self._db.execute("SELECT * FROM credits ORDER BY block_number, log_index")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def add_credit(self, **row) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO credits (tx_hash, tx_log_position, log_index, block_hash,"
                " block_number, player_id, currency, amount, deposit_key, outcome)"
                " VALUES (:tx_hash, :tx_log_position, :log_index, :block_hash, :block_number,"
                " :player_id, :currency, :amount, :deposit_key, :outcome)",
                row,
            )

    def move_credit(self, tx_hash: str, position: int, block_hash: str, block_number: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE credits SET block_hash = ?, block_number = ? WHERE tx_hash = ?"
                " AND tx_log_position = ?",
                (block_hash, block_number, tx_hash, position),
            )

    def mark_reversed(self, tx_hash: str, position: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE credits SET reversed = 1 WHERE tx_hash = ? AND tx_log_position = ?",
                (tx_hash, position),
            )

    def close(self) -> None:
        self._db.close()


@dataclass
class PollResult:
    head: int
    scanned_from: int
    credited: list[str] = field(default_factory=list)  # deposit keys posted this poll
    reversed: list[str] = field(default_factory=list)  # reversal keys posted this poll
    moved: list[str] = field(default_factory=list)  # deposit keys whose block changed


@dataclass(frozen=True)
class _Seen:
    tx_hash: str
    position: int  # the log's position among its transaction's logs: survives re-inclusion
    log_index: int
    block_hash: str
    block_number: int
    token: Token
    recipient: str
    value: int
    succeeded: bool


class ChainWatcher:
    def __init__(self, w3, ledger, config: WatcherConfig, state: WatcherState) -> None:
        self._w3, self._ledger, self._config, self._state = w3, ledger, config, state
        self._max_confirmations = max((t.confirmations for t in config.tokens), default=1)

    def poll(self) -> PollResult:
        """One scan of the new blocks plus the re-scan window; see the module docstring."""
        head = self._w3.eth.block_number
        self._check_anchor(head)
        cursor = self._state.cursor()
        first_unscanned = self._config.start_block if cursor is None else cursor + 1
        low = max(
            self._config.start_block, min(first_unscanned, head - self._config.rescan_blocks + 1), 0
        )
        result = PollResult(head=head, scanned_from=low)
        seen = self._fetch(low, head) if self._config.tokens and low <= head else []
        by_key = {(s.tx_hash, s.position): s for s in seen}
        self._check_reorgs(low, head, by_key, result)
        for item in seen:
            self._maybe_credit(item, head, result)
        settled = head - self._max_confirmations + 1
        if cursor is None or settled > cursor:
            self._state.set_cursor(max(settled, self._config.start_block - 1))
        self._set_anchor(head)
        log.info(
            "poll",
            head=head,
            scanned_from=low,
            logs=len(seen),
            credited=len(result.credited),
            reversed=len(result.reversed),
            moved=len(result.moved),
        )
        return result

    def _check_anchor(self, head: int) -> None:
        anchor = self._state.anchor()
        if anchor is None or anchor[0] > head:
            return
        number, stored = anchor
        canonical = _hex(self._w3.eth.get_block(number)["hash"])
        if canonical != stored:
            log.critical(
                "reorg_deeper_than_rescan_window",
                block=number,
                stored_hash=stored,
                canonical_hash=canonical,
                rescan_blocks=self._config.rescan_blocks,
            )
            raise DeepReorg(f"block {number} changed below the re-scan window")

    def _set_anchor(self, head: int) -> None:
        number = head - self._config.rescan_blocks
        if number >= 0:
            self._state.set_anchor(number, _hex(self._w3.eth.get_block(number)["hash"]))

    def _fetch(self, low: int, high: int) -> list[_Seen]:
        logs = self._w3.eth.get_logs(
            {
                "fromBlock": low,
                "toBlock": high,
                "address": [t.address for t in self._config.tokens],
                "topics": [TRANSFER_TOPIC],
            }
        )
        receipts: dict[str, dict] = {}
        seen = []
        for entry in logs:
            token = self._config.by_address.get(entry["address"].lower())
            topics = entry["topics"]
            if token is None or len(topics) != 3 or _hex(topics[0]) != TRANSFER_TOPIC:
                continue  # not allow-listed, or not an ERC-20 Transfer (e.g. ERC-721's 4 topics)
            if entry.get("removed"):
                continue
            tx_hash = _hex(entry["transactionHash"])
            if tx_hash not in receipts:
                receipts[tx_hash] = self._w3.eth.get_transaction_receipt(tx_hash)
            receipt = receipts[tx_hash]
            positions = [
                i for i, r in enumerate(receipt["logs"]) if r["logIndex"] == entry["logIndex"]
            ]
            data = bytes(entry["data"])
            if len(data) != 32:
                log.warning("malformed_transfer_log", tx_hash=tx_hash, log_index=entry["logIndex"])
                continue
            seen.append(
                _Seen(
                    tx_hash=tx_hash,
                    position=positions[0] if positions else entry["logIndex"],
                    log_index=entry["logIndex"],
                    block_hash=_hex(entry["blockHash"]),
                    block_number=entry["blockNumber"],
                    token=token,
                    recipient="0x" + bytes(topics[2])[-20:].hex(),
                    value=int.from_bytes(data, "big"),
                    succeeded=receipt["status"] == 1,
                )
            )
        return seen

    def _check_reorgs(self, low: int, head: int, by_key: dict, result: PollResult) -> None:
        hashes: dict[int, str | None] = {}
        for credit in self._state.credits_from(low):
            number = credit["block_number"]
            if number not in hashes:
                hashes[number] = (
                    None if number > head else _hex(self._w3.eth.get_block(number)["hash"])
                )
            if hashes[number] == credit["block_hash"]:
                continue
            key = (credit["tx_hash"], credit["tx_log_position"])
            found = by_key.get(key)
            if found is not None and found.succeeded:
                self._state.move_credit(*key, found.block_hash, found.block_number)
                result.moved.append(credit["deposit_key"])
                log.warning(
                    "credit_reincluded",
                    deposit_key=credit["deposit_key"],
                    old_block=number,
                    new_block=found.block_number,
                )
                continue
            self._reverse(credit, result)

    def _reverse(self, credit: dict, result: PollResult) -> None:
        """Posts the one reversal of a credit whose log left the canonical chain."""
        reversal_key = credit["deposit_key"] + ":reorg"
        if credit["player_id"] == SUSPENSE:
            reply = self._ledger.return_suspense(
                idempotency_key=reversal_key,
                currency=credit["currency"],
                item_key=credit["deposit_key"],
            )
            if reply.outcome == "INVALID_STATE":  # operations attributed it meanwhile
                log.error("reorged_suspense_already_resolved", item_key=credit["deposit_key"])
        else:
            reply = self._ledger.reverse_deposit(
                idempotency_key=reversal_key,
                deposit_key=credit["deposit_key"],
                player_id=credit["player_id"],
                currency=credit["currency"],
                amount=credit["amount"],
                rail=RAIL,
                rail_id=self._config.rail_id,
            )
        self._state.mark_reversed(credit["tx_hash"], credit["tx_log_position"])
        result.reversed.append(reversal_key)
        log.warning(
            "credit_reorged_out",
            deposit_key=credit["deposit_key"],
            block=credit["block_number"],
            outcome=reply.outcome,
        )

    def _maybe_credit(self, item: _Seen, head: int, result: PollResult) -> None:
        if head - item.block_number + 1 < item.token.confirmations:
            return
        existing = self._state.credit(item.tx_hash, item.position)
        if existing is not None:
            if existing["reversed"]:
                log.warning("reincluded_after_reversal", deposit_key=existing["deposit_key"])
            return
        if not item.succeeded:
            log.info("failed_transaction_ignored", tx_hash=item.tx_hash)
            return
        deposit_key = f"eth:{item.tx_hash}:{item.log_index}"
        amount = units_to_decimal(item.value, item.token.decimals)
        player_id = self._config.deposit_addresses.get(item.recipient)
        if player_id is None:
            log.warning(
                "unattributed_deposit_to_suspense", tx_hash=item.tx_hash, recipient=item.recipient
            )
            player_id, key, outcome = (
                SUSPENSE,
                deposit_key,
                self._hold(deposit_key, item, amount, "unknown_address"),
            )
        else:
            key, outcome = (
                deposit_key,
                self._ledger.deposit(
                    idempotency_key=deposit_key,
                    player_id=player_id,
                    currency=item.token.currency,
                    amount=amount,
                    rail=RAIL,
                    rail_id=self._config.rail_id,
                ).outcome,
            )
        if outcome not in CREDITED_OUTCOMES:
            log.warning("deposit_refused_to_suspense", deposit_key=deposit_key, outcome=outcome)
            player_id, key = SUSPENSE, f"{deposit_key}:suspense"
            outcome = self._hold(key, item, amount, outcome.lower())
        self._state.add_credit(
            tx_hash=item.tx_hash,
            tx_log_position=item.position,
            log_index=item.log_index,
            block_hash=item.block_hash,
            block_number=item.block_number,
            player_id=player_id,
            currency=item.token.currency,
            amount=amount,
            deposit_key=key,
            outcome=outcome,
        )
        result.credited.append(key)
        log.info(
            "deposit_credited",
            deposit_key=key,
            player_id=player_id or None,
            currency=item.token.currency,
            amount=amount,
            outcome=outcome,
        )

    def _hold(self, key: str, item: _Seen, amount: str, reason: str) -> str:
        """Parks money no player can take in suspense; returns the engine's outcome."""
        reply = self._ledger.hold_in_suspense(
            idempotency_key=key,
            currency=item.token.currency,
            amount=amount,
            rail=RAIL,
            rail_id=self._config.rail_id,
            reason=reason,
        )
        if reply.outcome not in CREDITED_OUTCOMES:
            log.error("suspense_hold_refused", item_key=key, outcome=reply.outcome)
        return reply.outcome
