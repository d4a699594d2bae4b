"""Game sessions: the operator opens one when a player launches a game, and Hub88 sends its
token back on every wallet call of that game.

The operator's platform asks the adapter for a token at launch (`POST /operator/sessions`)
and puts it into the Hub88 game URL. Balance and bet calls must carry a live token of their
user: an unknown token, or another user's, is RS_ERROR_INVALID_TOKEN; a token past its
lifetime, or superseded by a newer session of the same user, is RS_ERROR_TOKEN_EXPIRED.
Wins and rollbacks are never checked: Hub88 sends them long after a session may have ended.

Tokens are random (256 bits) and kept only as SHA-256 hashes, in the adapter's own SQLite
file, so a copy of the file opens no session.
"""

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from adapters.hub88 import protocol as p

SESSION_TTL_S_MAX = 7 * 24 * 3600


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    currency: str
    expires_at: datetime


# A token's user, whether a newer session of that user supersedes it, and its expiry: one
# statement, one index probe each (every balance and bet call runs it).
_LOOKUP = """
    SELECT s.user,
           EXISTS (SELECT 1 FROM sessions n WHERE n.user = s.user AND n.opened_at > s.opened_at),
           s.expires_at
    FROM sessions s WHERE s.token_sha256 = ?
"""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, path: Path | str, ttl: timedelta) -> None:
        if not timedelta(0) < ttl <= timedelta(seconds=SESSION_TTL_S_MAX):
            raise ValueError(f"session lifetime must be between 1 s and {SESSION_TTL_S_MAX} s")
        self._ttl = ttl
        self._lock = threading.Lock()
        # FastAPI runs the handlers in a thread pool; the lock serialises the connection.
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sessions (
                token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, currency TEXT NOT NULL,
                opened_at TEXT NOT NULL, expires_at TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user, opened_at);
            """
        )

    def open(self, user: str, currency: str, now: datetime) -> Session:
        """A new session for user; any earlier session of the user is superseded by it."""
        session = Session(secrets.token_urlsafe(32), user, currency, now + self._ttl)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                (
                    _token_hash(session.token),
                    user,
                    currency,
                    now.isoformat(),
                    session.expires_at.isoformat(),
                ),
            )
        return session

    def refusal(self, token: str | None, user: str, now: datetime) -> str | None:
        """The Hub88 status refusing a balance or bet call with this token, None if live."""
        if not token:
            return p.RS_ERROR_INVALID_TOKEN
        with self._lock:
            row = self._db.execute(_LOOKUP, (_token_hash(token),)).fetchone()
        if row is None or row[0] != user:
            return p.RS_ERROR_INVALID_TOKEN
        superseded, expires_at = row[1], row[2]
        if superseded or now >= datetime.fromisoformat(expires_at):
            return p.RS_ERROR_TOKEN_EXPIRED
        return None

    def close(self) -> None:
        self._db.close()
