"""The msgspec mapper: stable topics, canonical bytes, upcasting of old versions, and the
guard that a stored record holds the event its columns claim."""

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from ledger.core import events as e
from ledger.core.chain import digest, encode_event
from ledger.store.mapper import EventSchemas, MsgspecMapper

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _deposited(version: int = 2) -> e.Deposited:
    return e.Deposited(
        originator_id=uuid4(),
        originator_version=version,
        recorded_at=NOW,
        previous_hash="00",
        journal_id=uuid4(),
        key="d1",
        currency="EUR",
        postings=(e.Posting("psp:stripe:EUR", -5), e.Posting("player:p1:cash:EUR", 5)),
        amount=5,
        rail="psp",
        rail_id="stripe",
    )


def test_stored_state_is_the_canonical_bytes_the_chain_hashes():
    """What the store keeps is exactly what the digest is computed over."""
    event = _deposited()
    stored = MsgspecMapper().to_stored_event(event)
    assert stored.topic == "Deposited"
    assert stored.state == encode_event(event)
    assert digest(MsgspecMapper().plaintext(stored)) == digest(encode_event(event))


def test_every_event_type_has_a_unique_stable_tag():
    """Topics are explicit tags, never module paths, so refactoring cannot orphan history."""
    tags = [e.event_tag(event_type) for event_type in e.EVENT_TYPES]
    assert len(tags) == len(set(tags))
    assert all(":" not in tag and "." not in tag for tag in tags)


def test_an_old_version_is_upcast_on_read():
    """A v1 record is passed through the registered upcaster and decodes as the v2 class."""
    schemas = EventSchemas()
    event = _deposited()
    v1_bytes = encode_event(event).replace(
        b'"rail":"psp","rail_id":"stripe"', b'"gateway":"stripe"'
    )

    def gateway_to_rail(data: dict) -> dict:
        data["rail"], data["rail_id"] = "psp", data.pop("gateway")
        return data

    schemas.register_upcaster("Deposited", 1, gateway_to_rail)
    mapper = MsgspecMapper(schemas=schemas)
    old = StoredEvent(event.originator_id, event.originator_version, "Deposited", v1_bytes)
    assert mapper.to_domain_event(old) == event
    assert mapper.to_stored_event(event).topic == "Deposited@v2"


def test_a_record_whose_columns_disagree_with_its_content_is_refused():
    """Moving an event's bytes to another version row (reordering) is caught on decode."""
    event = _deposited(version=2)
    stored = MsgspecMapper().to_stored_event(event)
    moved = StoredEvent(stored.originator_id, 3, stored.topic, stored.state)
    with pytest.raises(MapperDeserialisationError, match="holds event"):
        MsgspecMapper().to_domain_event(moved)


def test_garbage_is_refused_with_the_record_named():
    """Undecodable bytes raise a deserialisation error naming topic, stream and version."""
    stored = StoredEvent(uuid4(), 1, "Deposited", b"{not json")
    with pytest.raises(MapperDeserialisationError, match="Deposited"):
        MsgspecMapper().to_domain_event(stored)


def test_event_decoding_validates_types():
    """A stored amount of the wrong type does not decode into an event."""
    bad = msgspec.json.encode({**msgspec.to_builtins(_deposited()), "amount": "5"})
    stored = StoredEvent(uuid4(), 2, "Deposited", bad)
    with pytest.raises(MapperDeserialisationError):
        MsgspecMapper().to_domain_event(stored)


def test_a_record_id_is_derived_as_uuid5_derives_it():
    """Record ids, and the audit's integers of them, equal uuid5 of (scope, key) as stored."""
    from uuid import uuid5

    from ledger.service.wallets import LEDGER_NAMESPACE, key_record_id, key_record_int

    for scope, key in [("client", "d1"), ("provider:hub88", "bet:ü-42"), ("client", "x" * 128)]:
        expected = uuid5(LEDGER_NAMESPACE, f"key\x1f{scope}\x1f{key}")
        assert key_record_id(scope, key) == expected
        assert key_record_id(scope, key).version == 5
        assert key_record_int(scope, key) == expected.int
