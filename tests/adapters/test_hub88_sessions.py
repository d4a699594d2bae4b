"""Hub88 game sessions and the game catalogue, without processes: lifetimes, supersession,
hashed storage, and refusal of malformed catalogue files."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from adapters.hub88 import protocol as p
from adapters.hub88.games import load_catalogue
from adapters.hub88.sessions import SessionStore

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    sessions = SessionStore(tmp_path / "sessions.sqlite3", timedelta(hours=4))
    yield sessions
    sessions.close()


def test_a_token_lives_until_its_lifetime_ends(store):
    """A fresh token is live for its user until expires_at, then TOKEN_EXPIRED."""
    session = store.open("p1", "EUR", NOW)
    assert store.refusal(session.token, "p1", NOW + timedelta(hours=3, minutes=59)) is None
    assert store.refusal(session.token, "p1", session.expires_at) == p.RS_ERROR_TOKEN_EXPIRED


def test_a_newer_session_supersedes_the_older_one(store):
    """Opening a second session expires the first for the same user only."""
    first = store.open("p1", "EUR", NOW)
    other = store.open("p2", "EUR", NOW + timedelta(seconds=1))
    second = store.open("p1", "EUR", NOW + timedelta(seconds=2))
    later = NOW + timedelta(seconds=3)
    assert store.refusal(first.token, "p1", later) == p.RS_ERROR_TOKEN_EXPIRED
    assert store.refusal(second.token, "p1", later) is None
    assert store.refusal(other.token, "p2", later) is None


def test_unknown_missing_or_foreign_tokens_are_invalid(store):
    """No token, a token never issued, or another user's token is INVALID_TOKEN."""
    session = store.open("p1", "EUR", NOW)
    for token, user in ((None, "p1"), ("", "p1"), ("forged", "p1"), (session.token, "p2")):
        assert store.refusal(token, user, NOW) == p.RS_ERROR_INVALID_TOKEN


def test_tokens_are_stored_only_as_hashes(store, tmp_path):
    """The session file never holds a token in the clear."""
    session = store.open("p1", "EUR", NOW)
    with sqlite3.connect(tmp_path / "sessions.sqlite3") as db:
        rows = db.execute("SELECT * FROM sessions").fetchall()
    assert rows and all(session.token not in map(str, row) for row in rows)


def test_a_session_lifetime_is_bounded(tmp_path):
    """A zero or over-long session lifetime is refused at start."""
    for ttl in (timedelta(0), timedelta(days=8)):
        with pytest.raises(ValueError, match="session lifetime"):
            SessionStore(tmp_path / "s.sqlite3", ttl)


def test_the_catalogue_maps_codes_to_categories_and_refuses_bad_files(tmp_path):
    """A catalogue is a non-empty [games] table of identifiers; anything else names the entry."""
    good = tmp_path / "games.toml"
    good.write_text('[games]\n"clt_dragonrising" = "slots"\n"evo_roulette" = "table"\n')
    assert load_catalogue(good) == {"clt_dragonrising": "slots", "evo_roulette": "table"}
    for text, message in (
        ("", "non-empty"),
        ('[games]\n"bad code" = "slots"\n', "bad code"),
        ('[games]\n"ok" = 3\n', "games.ok"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_catalogue(bad)
