"""Stored-event mapping with msgspec, replacing eventsourcing's JSON transcoder.

A stored event's topic is its stable tag (`Deposited`), suffixed `@vN` from class version 2
on. Its state is the event's canonical JSON (the very bytes the hash chain is computed
over), then optionally compressed and encrypted with the library's compressor and cipher.

Upcasting: a stored event older than its class's current version is decoded to a plain
dict, passed through the registered upcasters v1→v2→…, then converted to the class. The
hash chain is always verified over the stored plaintext, so upcasting never disturbs it.
"""

from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)

from ledger.core.chain import encode_event
from ledger.core.events import EVENT_TYPES, AnyEvent, StoredEventBase, event_tag
from ledger.event_log import LogRecord, RecordUndecodable

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventSchemas:
    """Event classes by tag, their current versions, and the upcasters between versions."""

    def __init__(self, event_types: tuple[type[StoredEventBase], ...] = EVENT_TYPES) -> None:
        self.by_tag = {event_tag(t): t for t in event_types}
        self.versions: dict[str, int] = dict.fromkeys(self.by_tag, 1)
        self.upcasters: dict[tuple[str, int], Upcaster] = {}
        self.decoder = msgspec.json.Decoder(AnyEvent)
        self._topics: dict[type, str] = {}

    def register_upcaster(self, tag: str, from_version: int, upcaster: Upcaster) -> None:
        """Declares that `tag` is now at `from_version + 1`, reached from the previous shape."""
        assert tag in self.by_tag, tag
        assert self.versions[tag] == from_version, (tag, from_version)
        self.upcasters[(tag, from_version)] = upcaster
        self.versions[tag] = from_version + 1
        self._topics.clear()

    def topic(self, event: StoredEventBase) -> str:
        topic = self._topics.get(type(event))
        if topic is None:  # versions only change while schemas are registered, at startup
            tag = event_tag(type(event))
            version = self.versions[tag]
            topic = self._topics[type(event)] = tag if version == 1 else f"{tag}@v{version}"
        return topic

    def decode(self, topic: str, plaintext: bytes) -> StoredEventBase:
        tag, _, version_text = topic.partition("@v")
        version = int(version_text) if version_text else 1
        current = self.versions[tag]
        if version == current and current == 1:
            return self.decoder.decode(plaintext)
        data = msgspec.json.decode(plaintext)
        while version < current:
            data = self.upcasters[(tag, version)](data)
            version += 1
        return msgspec.convert(data, self.by_tag[tag])


DEFAULT_SCHEMAS = EventSchemas()


class MsgspecMapper(Mapper[UUID]):
    """Maps ledger events to and from eventsourcing's StoredEvent."""

    def __init__(
        self,
        *,
        schemas: EventSchemas = DEFAULT_SCHEMAS,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        # No transcoder: msgspec encodes the whole event (see `encode_event`).
        super().__init__(transcoder=None, compressor=compressor, cipher=cipher)  # type: ignore
        self.schemas = schemas

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=self.schemas.topic(domain_event),
            state=self.sealed(domain_event),
        )

    def sealed(self, domain_event: StoredEventBase) -> bytes:
        """An event's stored state: its canonical bytes, compressed then encrypted as this
        mapper is configured (`opened` undoes it)."""
        state = encode_event(domain_event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state

    def plaintext(self, stored_event: StoredEvent) -> bytes:
        """The canonical bytes of a stored event: what its digest is computed over."""
        return self.opened(stored_event.state)

    def opened(self, state: bytes) -> bytes:
        """A record's stored state decrypted and decompressed: the event's canonical bytes."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def decode(self, stored_event: StoredEvent, plaintext: bytes) -> StoredEventBase:
        """Decodes (and upcasts) plaintext, checking it matches the record's id and version."""
        return self.decode_record(
            stored_event.topic,
            stored_event.originator_id,
            stored_event.originator_version,
            plaintext,
        )

    def decode_record(
        self, topic: str, stream_id: UUID | str, version: int, plaintext: bytes
    ) -> StoredEventBase:
        """Decodes (and upcasts) the plaintext of the record (topic, stream_id, version),
        checking that the event is that stream's at that version."""
        try:
            event = self.schemas.decode(topic, plaintext)
        except (msgspec.DecodeError, KeyError, ValueError) as error:
            raise MapperDeserialisationError(
                f"cannot decode {topic} {stream_id} v{version}: {error}"
            ) from error
        # Compared as ints: UUID equality is a Python-level call, on every event read.
        if (event.originator_id.int, event.originator_version) != (
            _as_uuid(stream_id).int,
            version,
        ):
            raise MapperDeserialisationError(
                f"stored record {stream_id} v{version} "
                f"holds event {event.originator_id} v{event.originator_version}"
            )
        return event

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode(stored_event, self.plaintext(stored_event))


class RecordOpener:
    """`EventLog.plaintext` and `EventLog.decode` for an adapter that holds a mapper: a
    record that does not open or decode is RecordUndecodable, whatever the cause."""

    mapper: MsgspecMapper

    def plaintext(self, record: LogRecord) -> bytes:
        try:
            return self.mapper.opened(record.state)
        except Exception as error:  # each cipher and compressor raises its own
            raise RecordUndecodable(
                f"cannot open {record.topic} {record.stream_id} v{record.version}: {error}"
            ) from error

    def decode(self, record: LogRecord, plaintext: bytes) -> StoredEventBase:
        try:
            return self.mapper.decode_record(
                record.topic, record.stream_id, record.version, plaintext
            )
        except MapperDeserialisationError as error:
            raise RecordUndecodable(str(error)) from error


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
