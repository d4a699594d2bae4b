"""The adapter's own SQLite file: known deposits and the callbacks already handled.

Two tables. `deposits` holds one row per payment (key `{processor}:{txid}`) with the player,
currency, amount and local status. `callbacks` holds one row per handled callback, keyed by
(callback id scoped by its type, `deposit:{id}` or `withdrawal:{id}`, and status). Rows from
before the ids were scoped match nothing, which is safe: a callback handled then and resent
now finds its deposit's state or the engine's DUPLICATE and moves no money again.

`record` writes the callback row and the deposit row in ONE transaction, so a callback is
never marked handled without its state change, nor the other way round.

The engine call happens before that transaction commits. If the process dies in between, the
callback is not marked handled, the processor resends it, and the engine call is repeated
with the same idempotency key: the engine answers DUPLICATE without moving money again, and
this time the local commit goes through. That is why every engine call here is keyed by the
payment and never by anything random.
"""

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deposits (
    key TEXT PRIMARY KEY,
    player TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    callback_id TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (callback_id, status)
);
"""

BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Deposit:
    key: str
    player: str
    currency: str
    amount: str
    status: str


class CallbackStore:
    """Deposits and handled callbacks; one connection, used under `lock` by the caller.

    The lock is public because a whole callback (read, engine call, write) must be handled
    as one critical section: two concurrent deliveries of the same payment must not both
    decide from the same old status.
    """

    def __init__(self, path: Path | str) -> None:
        # Autocommit mode (isolation_level=None) so `record` can open the transaction itself.
        self.connection = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.executescript(_SCHEMA)
        self.lock = threading.Lock()

    def handled(self, callback_id: str, status: str) -> str | None:
        """The outcome recorded for this (callback id, status), or None if it is new."""
        row = self.connection.execute(
            "SELECT outcome FROM callbacks WHERE callback_id = ? AND status = ?",
            (callback_id, status),
        ).fetchone()
        return None if row is None else row[0]

    def deposit(self, key: str) -> Deposit | None:
        row = self.connection.execute(
            "SELECT key, player, currency, amount, status FROM deposits WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else Deposit(*row)

    def record(
        self, callback_id: str, status: str, outcome: str, deposit: Deposit | None = None
    ) -> None:
        """Mark the callback handled and store the deposit's new state, atomically."""
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT INTO callbacks (callback_id, status, outcome) VALUES (?, ?, ?)",
                (callback_id, status, outcome),
            )
            if deposit is not None:
                connection.execute(
                    "INSERT OR REPLACE INTO deposits (key, player, currency, amount, status)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (deposit.key, deposit.player, deposit.currency, deposit.amount, deposit.status),
                )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()
