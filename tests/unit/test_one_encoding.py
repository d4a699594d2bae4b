"""One encoding per event: the bytes a new event's digest is taken over are the very bytes
stored, handed only to that event, and the same bytes (and hash chain) as before the change,
so stores written earlier still verify."""

import hashlib
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from ledger.core import chain, limits
from ledger.core import commands as c
from ledger.core.chain import chain_digest, digest, encode_event
from ledger.core.decide import decide
from ledger.core.draft import Context
from ledger.core.money import CurrencyRegistry
from ledger.core.policy import Policy, Rules
from ledger.service.wallets import wallet_id
from ledger.store.mapper import MsgspecMapper

RULES = Rules(CurrencyRegistry(), Policy())
WALLET = wallet_id("p1", "EUR")
NOW = datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=UTC)
WALLET_OF = {"player_id": "p1", "currency": "EUR"}
GAME = {**WALLET_OF, "provider": "hub88"}
HISTORY = (
    c.Deposit(idempotency_key="d1", amount=10_000, rail="psp", rail_id="stripe", **WALLET_OF),
    c.GrantBonus(idempotency_key="g1", amount=500, wagering_multiplier=2, **WALLET_OF),
    c.Bet(idempotency_key="b1", amount=10_300, round_id="r1", **GAME),
    c.Win(idempotency_key="w1", amount=2_500, bet_key="b1", round_closed=True, **GAME),
    c.Bet(idempotency_key="b2", amount=10**9, round_id="r2", **GAME),  # refused: no funds
    c.Rollback(idempotency_key="x1", target_key="w1", **GAME),
)
# Computed with the code before events were encoded once (commit c9f84c4): every stored byte
# of this history, and the wallet's head hash after it.
HISTORY_BYTES_SHA256 = "b1e627f95fefbf2b2b6ad1f8e3650c14b4a4d51ec1127e065cd72e9c574b957b"
HISTORY_HEAD_HASH = "d96cb53639144e3b0bec41330cdd8e31133c42d71d5be03b4175b8efe751dc57"


def _decided_history():
    """(every event decided for HISTORY, in order, and the wallet's final state)."""
    state, events = None, []
    for n, command in enumerate(HISTORY):
        context = Context(now=NOW, journal_id=UUID(int=n + 1), wallet_id=WALLET, rules=RULES)
        decision = decide(state, command, context)
        state = decision.state
        events.extend(decision.events)
    return events, state


def test_stored_bytes_and_hash_chain_are_those_written_before():
    """A fixed history stores the same bytes, and ends on the same head hash, as before."""
    events, state = _decided_history()
    stored = [MsgspecMapper().to_stored_event(event).state for event in events]
    assert len(stored) == 8
    assert hashlib.sha256(b"".join(stored)).hexdigest() == HISTORY_BYTES_SHA256
    assert state.head_hash == HISTORY_HEAD_HASH


def test_each_stored_event_is_its_canonical_encoding_and_its_successors_predecessor():
    """The store keeps each event's full canonical JSON, and the next event names its hash."""
    events, state = _decided_history()
    stored = [MsgspecMapper().to_stored_event(event).state for event in events]
    assert stored == [msgspec.json.encode(event) for event in events]
    for before, after in zip(stored, events[1:], strict=False):
        assert after.previous_hash == digest(before)
    assert state.head_hash == digest(stored[-1])


def test_kept_bytes_go_to_that_very_event_once():
    """An equal copy is encoded on its own; a second request encodes again, same bytes."""
    events, _ = _decided_history()
    event = events[-1]
    copy = msgspec.structs.replace(event)
    assert copy == event and copy is not event
    assert encode_event(copy) == msgspec.json.encode(event)
    assert id(event) in chain._kept
    first = encode_event(event)
    assert id(event) not in chain._kept
    assert encode_event(event) == first == msgspec.json.encode(event)


def test_the_memo_of_kept_bytes_stays_bounded():
    """Events decided but never stored cannot grow the memo past its limit."""
    events, _ = _decided_history()
    for _ in range(limits.encoding_memo_size_max + 10):
        chain_digest(msgspec.structs.replace(events[0]))
    assert 0 < len(chain._kept) <= limits.encoding_memo_size_max
