"""Where the read models live: tables beside the event store, in the same database.

Every page of view changes (a page of one log partition) is written in one transaction
together with that partition's tracking position, guarded by compare-and-set on the
position: a page is applied exactly once even after a crash, and a second runner that races
the first fails instead of double-applying. The journal's primary key (partition, position,
posting index) is a second guard.

PostgreSQL keeps amounts as NUMERIC (minor units, arbitrary precision) and adds deltas in
SQL. SQLite has no exact decimal type (its NUMERIC falls back to floating point), so amounts
are stored as decimal text and added in Python inside the same transaction.

Driver errors leave a store as the eventsourcing library's persistence errors, as they leave
the library's own datastores, so callers see one family (`ledger.store.outages` tells an outage
from a bug by it). A PostgreSQL store keeps one connection; when the server breaks it (a
restart, a terminated backend) the next call opens a new one, and a read that found its
connection broken is tried once more on the new one, as the library's reads are.
"""

import contextlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType

import msgspec
import psycopg
from eventsourcing import persistence

from ledger.store.database import connection_settings, search_path_option, store_environment
from projections.page import KeyUse, PageChanges, PostingRow
from projections.views import DocumentKey, Operation, apply_operations, note_key

TRACKING_NAME = "ledger_views"
POSTING_COLUMNS = (
    "partition_id",
    "position",
    "posting_index",
    "journal_id",
    "wallet_id",
    "wallet_version",
    "event_type",
    "idempotency_key",
    "account",
    "currency",
    "amount",
    "player_id",
    "recorded_at",
    "occurred_at",
    "provider",
    "round_id",
)
# Bumped whenever a view's tables change: a store at another layout drops its views on open
# and rebuilds them from the log (they are derived data; the log is never touched).
LAYOUT_VERSION = 4
VIEW_TABLES = (
    "projection_log",
    "projection_tracking",
    "account_balances",
    "trial_balance",
    "journal_postings",
    "view_documents",
    "key_owners",
    "key_reuses",
)


_POSTING_TYPES = (
    "int2",
    "int8",
    "int4",
    "uuid",
    "uuid",
    "int8",
    "text",
    "text",
    "text",
    "text",
    "numeric",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
)


SQLITE_LOCK_TIMEOUT_S = 30  # how long a write waits for another writer's lock

# DB-API 2.0 gives drivers and the library the same error names; most specific first.
_ERROR_NAMES = (
    "InterfaceError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "DatabaseError",
)


class PositionMoved(Exception):
    """The tracking position is not where this runner left it: another runner is active."""


def _translations(driver: ModuleType) -> tuple[tuple[type, type], ...]:
    """(driver error, library error) pairs for one driver, checked in order."""
    pairs = [(getattr(driver, name), getattr(persistence, name)) for name in _ERROR_NAMES]
    return (*pairs, (driver.Error, persistence.PersistenceError))


@contextlib.contextmanager
def _translated(translations: tuple[tuple[type, type], ...]) -> Iterator[None]:
    """Re-raises a driver error as the library's error of the same name."""
    try:
        yield
    except Exception as error:
        for driver_error, library_error in translations:
            if isinstance(error, driver_error):
                raise library_error(str(error)) from error
        raise


_SQLITE_ERRORS = _translations(sqlite3)
_POSTGRES_ERRORS = _translations(psycopg)


class ProjectionStore(ABC):
    def bind_log(self, partitions: int) -> None:
        """Ties the views to a log of this many partitions. Views built from a log of
        another count are of another history (the single log `ledger migrate` copied, or
        the copy when a store goes back to `?layout=single`): their positions mean nothing
        in this log, so they are emptied, to be rebuilt from it."""
        self._bind(partitions)

    @abstractmethod
    def _bind(self, partitions: int) -> None:
        """bind_log, in one transaction with the views' creator lock."""

    def positions(self, partitions: int) -> list[int]:
        """Each log partition's last applied position (0 before any), by partition."""
        found = [0] * partitions
        for partition, position in self._rows(
            "SELECT partition_id, position FROM projection_tracking WHERE name = ?",
            (TRACKING_NAME,),
        ):
            found[partition] = int(position)
        return found

    def position(self) -> int:
        """The sum of the partitions' last applied positions: the events applied, in a dense
        log (0 before any); for a log of one partition, its last applied position."""
        rows = self._rows(
            "SELECT coalesce(sum(position), 0) FROM projection_tracking WHERE name = ?",
            (TRACKING_NAME,),
        )
        return int(rows[0][0])

    @abstractmethod
    def apply(self, changes: PageChanges, expected_position: int) -> None:
        """Writes a page's changes and its partition's new position atomically, or raises
        PositionMoved if the partition's position is not expected_position."""

    @abstractmethod
    def balances(self) -> dict[str, tuple[str, int]]:
        """account -> (currency, balance in minor units)."""

    @abstractmethod
    def balance_of(self, account: str) -> int:
        """One account's balance in minor units (0 for an account never posted to)."""

    @abstractmethod
    def trial_balance(self) -> dict[str, tuple[int, int]]:
        """currency -> (debits, credits), both as positive minor-unit totals."""

    @abstractmethod
    def posting_count(self) -> int:
        """How many journal lines the journal view holds."""

    @abstractmethod
    def statement(self, player_id: str, currency: str, after: int, limit: int) -> list[tuple]:
        """A player's journal lines (position, index, event type, key, account, amount)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _rows(self, statement: str, params: tuple = ()) -> list[tuple]:
        """A read's rows; statements use `?` placeholders on every store."""

    def documents(
        self,
        kind: str,
        where: str = "",
        params: tuple = (),
        limit: int = 1,
        newest_first: bool = False,
    ) -> list:
        """The decoded documents of a kind, in (sort, key) order, filtered by `where`."""
        order = "sort DESC, key DESC" if newest_first else "sort, key"
        rows = self._rows(
            f"SELECT doc FROM view_documents WHERE kind = ? {where} ORDER BY {order} LIMIT ?",
            (kind, *params, limit),
        )
        return [msgspec.json.decode(doc) for (doc,) in rows]

    def player_ids(self, prefix: str, after: str, limit: int) -> list[str]:
        """Players with a wallet whose id starts with prefix, after `after`, in id order."""
        rows = self._rows(
            "SELECT DISTINCT player_id FROM view_documents WHERE kind = 'wallet' "
            "AND player_id > ? AND substr(player_id, 1, length(?)) = ? "
            "ORDER BY player_id LIMIT ?",
            (after, prefix, prefix, limit),
        )
        return [player_id for (player_id,) in rows]

    def wallets_of(self, player_id: str) -> list[dict]:
        rows = self._rows(
            "SELECT doc FROM view_documents WHERE kind = 'wallet' AND player_id = ? "
            "ORDER BY currency LIMIT 100",
            (player_id,),
        )
        return [msgspec.json.decode(doc) for (doc,) in rows]

    def balances_of(self, accounts: list[str]) -> dict[str, int]:
        """Each named account's balance; an account never posted to is left out."""
        if not accounts:
            return {}
        marks = ", ".join("?" * len(accounts))
        rows = self._rows(
            f"SELECT account, balance FROM account_balances WHERE account IN ({marks})",
            tuple(accounts),
        )
        return {account: _integer(Decimal(balance)) for account, balance in rows}

    def house_balances(self) -> list[tuple[str, str, int]]:
        """(account, currency, balance) of every account that is not a player's."""
        rows = self._rows(
            "SELECT account, currency, balance FROM account_balances "
            "WHERE account < 'player:' OR account >= 'player;' ORDER BY account"
        )
        return [(account, currency, _integer(Decimal(b))) for account, currency, b in rows]

    def statement_lines(self, player_id: str, currency: str, before: int, limit: int):
        """A player's journal lines before position `before`, newest first."""
        return self._rows(
            "SELECT position, posting_index, event_type, idempotency_key, account, amount, "
            "provider, round_id, recorded_at FROM journal_postings WHERE player_id = ? "
            "AND currency = ? AND position < ? ORDER BY position DESC, posting_index LIMIT ?",
            (player_id, currency, before, limit),
        )

    def notes(self, wallet_id: str, after: int, before: int, limit: int) -> list[dict]:
        """A wallet's events that moved no money, between two positions, newest first."""
        rows = self._rows(
            # The prefix test too: a collation that skips punctuation (PostgreSQL's en_US)
            # could put another wallet's keys inside the range.
            "SELECT doc FROM view_documents WHERE kind = 'note' AND key > ? AND key < ? "
            "AND substr(key, 1, ?) = ? ORDER BY key DESC LIMIT ?",
            (
                note_key(wallet_id, after),
                note_key(wallet_id, before),
                len(wallet_id) + 1,
                wallet_id + ":",
                limit,
            ),
        )
        return [msgspec.json.decode(doc) for (doc,) in rows]

    def key_reuses(self, limit: int = 100) -> list[tuple]:
        """Keys a follower saw used for a second wallet, for reconciliation: (scope, key,
        wallet, first wallet, partition, position), oldest flag first."""
        return self._rows(
            "SELECT scope, key, wallet_id, first_wallet_id, partition_id, position "
            "FROM key_reuses ORDER BY flagged LIMIT ?",
            (limit,),
        )

    def record_audit(self, run: dict) -> None:
        """Keeps one `ledger audit` result for the console (not a view: never rebuilt)."""
        self._write(
            "INSERT INTO audit_runs (finished_at, result) VALUES (?, ?)",
            (run["finished_at"], msgspec.json.encode(run).decode()),
        )

    def last_audit(self) -> dict | None:
        rows = self._rows("SELECT result FROM audit_runs ORDER BY finished_at DESC LIMIT 1")
        return msgspec.json.decode(rows[0][0]) if rows else None

    @abstractmethod
    def _write(self, statement: str, params: tuple) -> None:
        """Runs one statement in a transaction of its own."""


def open_projection_store(database_url: str) -> ProjectionStore:
    environment = store_environment(database_url)
    if environment["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return SqliteProjectionStore(environment["SQLITE_DBNAME"])
    return PostgresProjectionStore(environment)


def _posting_tuple(row: PostingRow, amount) -> tuple:
    return (
        row.partition,
        row.position,
        row.index,
        str(row.journal_id),
        str(row.wallet_id),
        row.wallet_version,
        row.event_type,
        row.idempotency_key,
        row.account,
        row.currency,
        amount,
        row.player_id,
        row.recorded_at.isoformat(),
        row.occurred_at.isoformat() if row.occurred_at else None,
        row.provider,
        row.round_id,
    )


class SqliteProjectionStore(ProjectionStore):
    def __init__(self, path: str, lock_timeout_s: float = SQLITE_LOCK_TIMEOUT_S) -> None:
        with _translated(_SQLITE_ERRORS):
            # Shared between the server's worker threads for reads; sqlite3 serialises use.
            self.connection = sqlite3.connect(
                path, isolation_level=None, timeout=lock_timeout_s, check_same_thread=False
            )
            self._prepare()

    def _prepare(self) -> None:
        """Creates the views, first dropping any of another layout, in one transaction."""
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS projection_layout (version INTEGER NOT NULL)")
            if db.execute("SELECT version FROM projection_layout").fetchall() != [
                (LAYOUT_VERSION,)
            ]:
                for table in VIEW_TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                db.execute("DELETE FROM projection_layout")
                db.execute("INSERT INTO projection_layout VALUES (?)", (LAYOUT_VERSION,))
            for statement in _SQLITE_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _bind(self, partitions: int) -> None:
        db = self.connection
        with _translated(_SQLITE_ERRORS):
            db.execute("BEGIN IMMEDIATE")
            try:
                bound = db.execute("SELECT partitions FROM projection_log").fetchall()
                if bound != [(partitions,)]:
                    for table in VIEW_TABLES:
                        db.execute(f"DELETE FROM {table}")
                    db.execute("INSERT INTO projection_log VALUES (?)", (partitions,))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _write(self, statement: str, params: tuple) -> None:
        with _translated(_SQLITE_ERRORS):
            self.connection.execute(statement, params)  # autocommit: its own transaction

    def _rows(self, statement: str, params: tuple = ()) -> list[tuple]:
        with _translated(_SQLITE_ERRORS):
            return self.connection.execute(statement, params).fetchall()

    def apply(self, changes: PageChanges, expected_position: int) -> None:
        with _translated(_SQLITE_ERRORS):
            self._apply(changes, expected_position)

    def _apply(self, changes: PageChanges, expected_position: int) -> None:
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            tracked = (TRACKING_NAME, changes.partition)
            db.execute("INSERT OR IGNORE INTO projection_tracking VALUES (?, ?, 0)", tracked)
            moved = db.execute(
                "UPDATE projection_tracking SET position = ? "
                "WHERE name = ? AND partition_id = ? AND position = ?",
                (changes.last_position, *tracked, expected_position),
            )
            if moved.rowcount != 1:
                raise PositionMoved(f"tracking is not at {expected_position}")
            self._add_balances(changes)
            self._add_trial(changes)
            db.executemany(
                f"INSERT INTO journal_postings VALUES ({', '.join('?' * len(POSTING_COLUMNS))})",
                [_posting_tuple(row, str(row.amount)) for row in changes.postings],
            )
            self._apply_documents(changes.documents)
            # A SQLite log is one partition: the table's key refuses a reused key itself.
            assert not changes.key_uses, "keys are tracked only beside a partitioned log"
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _add_balances(self, changes: PageChanges) -> None:
        accounts = [account for account, _ in changes.balance_deltas]
        current = self._current("account_balances", "account", "balance", accounts)
        self.connection.executemany(
            "INSERT OR REPLACE INTO account_balances VALUES (?, ?, ?)",
            [
                (account, currency, str(current.get(account, 0) + delta))
                for (account, currency), delta in changes.balance_deltas.items()
            ],
        )

    def _add_trial(self, changes: PageChanges) -> None:
        currencies = sorted(set(changes.debits) | set(changes.credits))
        rows = self.connection.execute(
            f"SELECT currency, debits, credits FROM trial_balance WHERE currency IN "
            f"({', '.join('?' * len(currencies))})",
            currencies,
        ).fetchall()
        current = {currency: (int(d), int(c)) for currency, d, c in rows}
        self.connection.executemany(
            "INSERT OR REPLACE INTO trial_balance VALUES (?, ?, ?)",
            [
                (
                    currency,
                    str(current.get(currency, (0, 0))[0] + changes.debits[currency]),
                    str(current.get(currency, (0, 0))[1] + changes.credits[currency]),
                )
                for currency in currencies
            ],
        )

    def _apply_documents(self, documents: dict[DocumentKey, list[Operation]]) -> None:
        current: dict[DocumentKey, dict] = {}
        keys = list(documents)
        for start in range(0, len(keys), 250):  # two bound parameters per key
            chunk = keys[start : start + 250]
            rows = self.connection.execute(
                "SELECT kind, key, doc FROM view_documents WHERE "
                + " OR ".join("(kind = ? AND key = ?)" for _ in chunk),
                [part for key in chunk for part in key],
            )
            current.update(((kind, key), msgspec.json.decode(doc)) for kind, key, doc in rows)
        self.connection.executemany(
            "INSERT OR REPLACE INTO view_documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                _document_row(key, apply_operations(current.get(key), operations))
                for key, operations in documents.items()
            ],
        )

    def _current(self, table: str, key: str, column: str, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
            chunk = keys[start : start + 500]
            rows = self.connection.execute(
                f"SELECT {key}, {column} FROM {table} WHERE {key} IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((name, int(value)) for name, value in rows)
        return found

    def balances(self) -> dict[str, tuple[str, int]]:
        rows = self._rows("SELECT account, currency, balance FROM account_balances")
        return {account: (currency, int(balance)) for account, currency, balance in rows}

    def balance_of(self, account: str) -> int:
        rows = self._rows("SELECT balance FROM account_balances WHERE account = ?", (account,))
        return int(rows[0][0]) if rows else 0

    def trial_balance(self) -> dict[str, tuple[int, int]]:
        rows = self._rows("SELECT currency, debits, credits FROM trial_balance")
        return {currency: (int(d), int(c)) for currency, d, c in rows}

    def posting_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM journal_postings")[0][0])

    def statement(self, player_id: str, currency: str, after: int, limit: int) -> list[tuple]:
        rows = self._rows(
            "SELECT position, posting_index, event_type, idempotency_key, account, amount "
            "FROM journal_postings WHERE player_id = ? AND currency = ? AND position > ? "
            "ORDER BY position, posting_index LIMIT ?",
            (player_id, currency, after, limit),
        )
        return [(*row[:5], int(row[5])) for row in rows]

    def close(self) -> None:
        self.connection.close()


class PostgresProjectionStore(ProjectionStore):
    def __init__(self, environment: dict[str, str]) -> None:
        self.settings = connection_settings(environment, options=search_path_option(environment))
        self._replacing = threading.Lock()  # the reading store is shared by worker threads
        with _translated(_POSTGRES_ERRORS):
            self.connection = psycopg.connect(**self.settings)
            with self.connection.transaction():
                # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still collide.
                self.connection.execute("SELECT pg_advisory_xact_lock(hashtext('ledger_views'))")
                self._drop_other_layout()
                self.connection.execute(_POSTGRES_SCHEMA)

    def _drop_other_layout(self) -> None:
        """Drops views of another layout (they rebuild from the log) and records this one."""
        db = self.connection
        db.execute("CREATE TABLE IF NOT EXISTS projection_layout (version integer NOT NULL)")
        if db.execute("SELECT version FROM projection_layout").fetchall() == [(LAYOUT_VERSION,)]:
            return
        db.execute(f"DROP TABLE IF EXISTS {', '.join(VIEW_TABLES)}")
        db.execute("DELETE FROM projection_layout")
        db.execute("INSERT INTO projection_layout VALUES (%s)", (LAYOUT_VERSION,))

    def _bind(self, partitions: int) -> None:
        with _translated(_POSTGRES_ERRORS), self._connected().transaction():
            db = self.connection
            db.execute("SELECT pg_advisory_xact_lock(hashtext('ledger_views'))")
            bound = db.execute("SELECT partitions FROM projection_log").fetchall()
            if bound != [(partitions,)]:
                db.execute(f"TRUNCATE {', '.join(VIEW_TABLES)}")
                db.execute("INSERT INTO projection_log VALUES (%s)", (partitions,))

    def _write(self, statement: str, params: tuple) -> None:
        with _translated(_POSTGRES_ERRORS), self._connected().transaction():
            self.connection.execute(statement.replace("?", "%s"), params)

    def _connected(self) -> psycopg.Connection:
        """The store's connection, replaced first if the server broke it."""
        with self._replacing:
            if self.connection.broken:
                self.connection = psycopg.connect(**self.settings)
            return self.connection

    def _rows(self, statement: str, params: tuple = ()) -> list[tuple]:
        """A read's rows; a connection broken since its last use is replaced and the read
        tried once more, so a restarted server costs no failed call once it is back."""
        statement = statement.replace("?", "%s")
        with _translated(_POSTGRES_ERRORS):
            connection = self._connected()
            try:
                return connection.execute(statement, params).fetchall()
            except psycopg.OperationalError:
                if not connection.broken:
                    raise  # the statement failed, not the connection
            return self._connected().execute(statement, params).fetchall()

    def apply(self, changes: PageChanges, expected_position: int) -> None:
        with _translated(_POSTGRES_ERRORS):
            self._apply(self._connected(), changes, expected_position)

    def _apply(self, db: psycopg.Connection, changes: PageChanges, expected_position: int) -> None:
        with db.transaction():
            tracked = (TRACKING_NAME, changes.partition)
            db.execute(
                "INSERT INTO projection_tracking VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
                tracked,
            )
            moved = db.execute(
                "UPDATE projection_tracking SET position = %s "
                "WHERE name = %s AND partition_id = %s AND position = %s",
                (changes.last_position, *tracked, expected_position),
            )
            if moved.rowcount != 1:
                raise PositionMoved(f"tracking is not at {expected_position}")
            # One set-based statement per table and page, not one per row.
            balances = changes.balance_deltas.items()
            db.execute(
                "INSERT INTO account_balances AS b SELECT * FROM unnest("
                "%s::text[], %s::text[], %s::numeric[]) ON CONFLICT (account) "
                "DO UPDATE SET balance = b.balance + EXCLUDED.balance",
                (
                    [a for (a, _), _ in balances],
                    [c for (_, c), _ in balances],
                    [delta for _, delta in balances],
                ),
            )
            currencies = sorted(set(changes.debits) | set(changes.credits))
            db.execute(
                "INSERT INTO trial_balance AS t SELECT * FROM unnest("
                "%s::text[], %s::numeric[], %s::numeric[]) ON CONFLICT (currency) "
                "DO UPDATE SET debits = t.debits + EXCLUDED.debits, "
                "credits = t.credits + EXCLUDED.credits",
                (
                    currencies,
                    [changes.debits[c] for c in currencies],
                    [changes.credits[c] for c in currencies],
                ),
            )
            _copy_postings(db, changes.postings)
            _apply_documents(db, changes.documents)
            _flag_key_reuses(db, changes.key_uses)

    def balances(self) -> dict[str, tuple[str, int]]:
        rows = self._rows("SELECT account, currency, balance FROM account_balances")
        return {account: (currency, _integer(balance)) for account, currency, balance in rows}

    def balance_of(self, account: str) -> int:
        rows = self._rows("SELECT balance FROM account_balances WHERE account = %s", (account,))
        return _integer(rows[0][0]) if rows else 0

    def trial_balance(self) -> dict[str, tuple[int, int]]:
        rows = self._rows("SELECT currency, debits, credits FROM trial_balance")
        return {currency: (_integer(d), _integer(c)) for currency, d, c in rows}

    def posting_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM journal_postings")[0][0])

    def statement(self, player_id: str, currency: str, after: int, limit: int) -> list[tuple]:
        rows = self._rows(
            "SELECT position, posting_index, event_type, idempotency_key, account, amount "
            "FROM journal_postings WHERE player_id = %s AND currency = %s AND position > %s "
            "ORDER BY position, posting_index LIMIT %s",
            (player_id, currency, after, limit),
        )
        return [(*row[:5], _integer(row[5])) for row in rows]

    def close(self) -> None:
        self.connection.close()


def _copy_postings(db: psycopg.Connection, rows: list[PostingRow]) -> None:
    """Binary COPY with native types: no per-value text formatting in Python."""
    columns = ", ".join(POSTING_COLUMNS)
    statement = f"COPY journal_postings ({columns}) FROM STDIN (FORMAT BINARY)"
    with db.cursor().copy(statement) as copy:
        copy.set_types(_POSTING_TYPES)
        for row in rows:
            copy.write_row(
                (
                    row.partition,
                    row.position,
                    row.index,
                    row.journal_id,
                    row.wallet_id,
                    row.wallet_version,
                    row.event_type,
                    row.idempotency_key,
                    row.account,
                    row.currency,
                    row.amount,
                    row.player_id,
                    row.recorded_at,
                    row.occurred_at,
                    row.provider,
                    row.round_id,
                )
            )


def _flag_key_reuses(db: psycopg.Connection, uses: list[KeyUse]) -> None:
    """Records each key's first wallet, and flags a record id seen again (the same key
    sent for another wallet, stored in another partition) for reconciliation."""
    if not uses:
        return
    ids = [use.record_id for use in uses]
    owners = dict(
        db.execute(
            "SELECT record_id, wallet_id FROM key_owners WHERE record_id = ANY(%s)", (ids,)
        ).fetchall()
    )
    first = [use for use in uses if use.record_id not in owners]
    again = [use for use in uses if use.record_id in owners]
    db.execute(
        "INSERT INTO key_owners SELECT * FROM unnest(%s::uuid[], %s::uuid[]) "
        "ON CONFLICT (record_id) DO NOTHING",
        ([u.record_id for u in first], [u.wallet_id for u in first]),
    )
    db.execute(
        "INSERT INTO key_reuses (scope, key, wallet_id, first_wallet_id, partition_id, "
        "position) SELECT * FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::uuid[], "
        "%s::smallint[], %s::bigint[]) ON CONFLICT DO NOTHING",
        (
            [u.scope for u in again],
            [u.key for u in again],
            [u.wallet_id for u in again],
            [owners[u.record_id] for u in again],
            [u.partition for u in again],
            [u.position for u in again],
        ),
    )


def _apply_documents(db: psycopg.Connection, documents: dict) -> None:
    """Loads the documents a page touches, applies its operations, writes them back."""
    if not documents:
        return
    kinds, keys = [kind for kind, _ in documents], [key for _, key in documents]
    rows = db.execute(
        "SELECT kind, key, doc FROM view_documents WHERE (kind, key) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[]))",
        (kinds, keys),
    ).fetchall()
    current = {(kind, key): msgspec.json.decode(doc) for kind, key, doc in rows}
    written = [
        _document_row(key, apply_operations(current.get(key), operations))
        for key, operations in documents.items()
    ]
    columns = list(zip(*written, strict=True))
    db.execute(
        "INSERT INTO view_documents SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::text[]) ON CONFLICT (kind, key) DO UPDATE SET "
        "player_id = EXCLUDED.player_id, currency = EXCLUDED.currency, "
        "status = EXCLUDED.status, sort = EXCLUDED.sort, doc = EXCLUDED.doc",
        [list(column) for column in columns],
    )


def _document_row(key: DocumentKey, document: dict) -> tuple:
    """A document as its table row: the columns the console filters and sorts on, then JSON."""
    return (
        *key,
        document.get("player_id"),
        document.get("currency"),
        document.get("status"),
        document.get("sort"),
        msgspec.json.encode(document).decode(),
    )


def _integer(value: Decimal | int) -> int:
    assert value == int(value), value  # minor units are whole numbers
    return int(value)


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_log (partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projection_tracking (
    name TEXT NOT NULL, partition_id INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (name, partition_id));
CREATE TABLE IF NOT EXISTS account_balances (
    account TEXT PRIMARY KEY, currency TEXT NOT NULL, balance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trial_balance (
    currency TEXT PRIMARY KEY, debits TEXT NOT NULL, credits TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal_postings (
    partition_id INTEGER NOT NULL,
    position INTEGER NOT NULL, posting_index INTEGER NOT NULL, journal_id TEXT NOT NULL,
    wallet_id TEXT NOT NULL, wallet_version INTEGER NOT NULL, event_type TEXT NOT NULL,
    idempotency_key TEXT NOT NULL, account TEXT NOT NULL, currency TEXT NOT NULL,
    amount TEXT NOT NULL, player_id TEXT, recorded_at TEXT NOT NULL, occurred_at TEXT,
    provider TEXT, round_id TEXT, PRIMARY KEY (partition_id, position, posting_index));
CREATE INDEX IF NOT EXISTS journal_postings_statement
    ON journal_postings (player_id, currency, position) WHERE player_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS view_documents (
    kind TEXT NOT NULL, key TEXT NOT NULL, player_id TEXT, currency TEXT, status TEXT,
    sort TEXT, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS view_documents_players ON view_documents (kind, player_id);
CREATE INDEX IF NOT EXISTS view_documents_queues ON view_documents (kind, status, sort);
CREATE INDEX IF NOT EXISTS view_documents_days ON view_documents (kind, currency, sort);
CREATE TABLE IF NOT EXISTS audit_runs (finished_at TEXT NOT NULL, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_owners (record_id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_reuses (
    scope TEXT NOT NULL, key TEXT NOT NULL, wallet_id TEXT NOT NULL,
    first_wallet_id TEXT NOT NULL, partition_id INTEGER NOT NULL, position INTEGER NOT NULL,
    flagged TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (partition_id, position));
"""

_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_log (partitions smallint NOT NULL);
CREATE TABLE IF NOT EXISTS projection_tracking (
    name text NOT NULL, partition_id smallint NOT NULL, position bigint NOT NULL,
    PRIMARY KEY (name, partition_id));
CREATE TABLE IF NOT EXISTS account_balances (
    account text PRIMARY KEY, currency text NOT NULL, balance numeric NOT NULL);
CREATE TABLE IF NOT EXISTS trial_balance (
    currency text PRIMARY KEY, debits numeric NOT NULL, credits numeric NOT NULL);
CREATE TABLE IF NOT EXISTS journal_postings (
    partition_id smallint NOT NULL,
    position bigint NOT NULL, posting_index integer NOT NULL, journal_id uuid NOT NULL,
    wallet_id uuid NOT NULL, wallet_version bigint NOT NULL, event_type text NOT NULL,
    idempotency_key text NOT NULL, account text NOT NULL, currency text NOT NULL,
    amount numeric NOT NULL, player_id text, recorded_at timestamptz NOT NULL,
    occurred_at timestamptz, provider text, round_id text,
    PRIMARY KEY (partition_id, position, posting_index));
CREATE INDEX IF NOT EXISTS journal_postings_statement
    ON journal_postings (player_id, currency, position) WHERE player_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS view_documents (
    kind text NOT NULL, key text NOT NULL, player_id text, currency text, status text,
    sort text, doc text NOT NULL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS view_documents_players ON view_documents (kind, player_id);
CREATE INDEX IF NOT EXISTS view_documents_queues ON view_documents (kind, status, sort);
CREATE INDEX IF NOT EXISTS view_documents_days ON view_documents (kind, currency, sort);
CREATE TABLE IF NOT EXISTS audit_runs (finished_at text NOT NULL, result text NOT NULL);
CREATE TABLE IF NOT EXISTS key_owners (record_id uuid PRIMARY KEY, wallet_id uuid NOT NULL);
CREATE TABLE IF NOT EXISTS key_reuses (
    scope text NOT NULL, key text NOT NULL, wallet_id uuid NOT NULL,
    first_wallet_id uuid NOT NULL, partition_id smallint NOT NULL, position bigint NOT NULL,
    flagged timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (partition_id, position));
"""
