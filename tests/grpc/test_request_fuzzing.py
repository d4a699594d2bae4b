"""Every method of LedgerService, enumerated from its descriptor, against random bytes,
truncated encodings of requests, and requests with random field values, on a real
`ledger serve` over SQLite and PostgreSQL with the admin token.

The properties: the answer is OK (a business outcome) or INVALID_ARGUMENT naming the field,
never INTERNAL or UNKNOWN; a refused call stores nothing (the event log's last notification
id is unchanged); and the server's log gains no traceback and no error line. Statuses also
legitimate for one method, and why:

- GetTransaction: NOT_FOUND, for a well-formed key nobody sent.
- SubscribeEvents: DEADLINE_EXCEEDED, which is how a valid subscription ends here: it follows
  the log live until the client's deadline.
- AdvanceClock: UNIMPLEMENTED, for a well-formed request: the store here is a production
  store, whose clock cannot be advanced.

Field values come from the descriptor too: each field draws either a plausible value (so
that some requests get past decoding and validation into the engine) or an odd one (NUL,
other scripts' digits, huge and negative numbers, out-of-range timestamps).
"""

import re

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import StatusCode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core import limits
from ledger.event_log import log_size
from ledger.service.application import Ledger
from tests.grpc.raw import METHODS, raw_call

pytestmark = pytest.mark.slow

# Per method, by whether it streams: a valid subscription costs its whole deadline.
EXAMPLES = {False: 120, True: 30}
SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
ALSO_ACCEPTED = {
    "GetTransaction": {StatusCode.NOT_FOUND},
    "SubscribeEvents": {StatusCode.DEADLINE_EXCEEDED},
    "AdvanceClock": {StatusCode.UNIMPLEMENTED},
}
ANSWERED = {StatusCode.OK, StatusCode.DEADLINE_EXCEEDED}  # the call ran; it may have stored
# A refusal starts with the field's path: `amount: ...`, `commands[1].bet.occurred_at: ...`.
FIELD_FIRST = re.compile(r"[a-z_0-9]+(\[\d+\])?(\.[a-z_0-9]+)*: ")
MESSAGE_DEPTH_MAX = 4  # SubmitBatchRequest > Command > BetRequest > Timestamp
F = FieldDescriptor
INTEGER_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_ENUM: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
ODD_INTEGERS = [
    -(2**63),
    -(2**31),
    -1,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**53 + 1,
    2**63 - 2,
    2**63 - 1,
    2**63,
    2**64 - 1,
]
PLAUSIBLE = {
    "player_id": ["p-1", "p-2"],
    "currency": ["EUR", "BTC"],
    "amount": ["1", "0.5", "0", "1000000000000"],
    "rail": ["psp", "chain"],
    "rail_id": ["stripe", "ethereum"],
    "provider": ["hub88"],
    "round_id": ["r-1"],
    "game_category": ["slots", ""],
    "reason": ["unknown_address"],
    "account": ["house:games:hub88:EUR", "player:p-1:cash:EUR"],
    "page_token": ["", "1"],
}
# A field with presence is set on either of two coin flips and a field is odd on both, so a
# message usually mixes plausible and odd values, and now and then is plausible throughout.
PRESENT = st.tuples(st.booleans(), st.booleans()).map(any)
ODD = st.tuples(st.booleans(), st.booleans()).map(all)
# Separators, control and non-ASCII characters, and digits that are not ASCII: str.isdigit
# admits all four of the last (superscripts, circled, Arabic-Indic), int() only the last.
ODD_CHARACTERS = [
    "\x00",
    " ",
    ":",
    "\n",
    "\u00e9",
    "\U0001f600",
    "\u00b2",
    "\u2075",
    "\u2460",
    "\u0661",
]
ODD_STRINGS = st.one_of(
    st.text(max_size=24),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "k\x00",
            "\u00b2",
            "\u0661\u0662",
            "1e3",
            "-1",
            "NaN",
            "0x10",
            "1.0000001",
            "EUR ",
            "a:b",
            "x" * 300,
            "\u202e",
            "\ufeff1",
            "p:1:cash:EUR",
        ]
    ),
)


def _strings(name: str, odd: bool) -> st.SearchStrategy[str]:
    if name.endswith("_key"):
        plausible = st.one_of(
            st.sampled_from(["k-1", "k-2"]), st.uuids().map(lambda u: f"k-{u.hex[:12]}")
        )
    elif name.startswith(("max_", "deposit_limit", "loss_limit")):
        plausible = st.sampled_from(["1", "0.5", "0"])
    else:
        plausible = st.sampled_from(PLAUSIBLE.get(name, ["k-1"]))
    return st.one_of(_near_misses(plausible), ODD_STRINGS) if odd else plausible


def _near_misses(plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A plausible value with one odd character put in: what slips past a loose check."""
    return st.builds(
        lambda text, at, odd: text[:at] + odd + text[at:],
        plausible,
        st.integers(0, 24),
        st.sampled_from(ODD_CHARACTERS),
    )


def _timestamps(odd: bool) -> st.SearchStrategy[Timestamp]:
    low, high = limits.timestamp_seconds_min, limits.timestamp_seconds_max
    seconds = st.one_of(st.integers(low, high), st.sampled_from([low, 0, high]))
    nanos = st.integers(0, limits.timestamp_nanos_max)
    if not odd:
        return st.builds(Timestamp, seconds=seconds, nanos=nanos)
    any_seconds = st.integers(*INTEGER_RANGES[F.TYPE_INT64])
    wrong_seconds = any_seconds.filter(lambda value: not low <= value <= high)
    wrong_nanos = st.integers(*INTEGER_RANGES[F.TYPE_INT32]).filter(
        lambda value: not 0 <= value <= limits.timestamp_nanos_max
    )
    return st.one_of(
        st.builds(Timestamp, seconds=st.sampled_from([low - 1, high + 1, 2**62]), nanos=nanos),
        st.builds(Timestamp, seconds=wrong_seconds, nanos=nanos),
        st.builds(Timestamp, seconds=any_seconds, nanos=wrong_nanos),
    )


def _integers(low: int, high: int, odd: bool) -> st.SearchStrategy[int]:
    if not odd:
        return st.integers(max(low, 0), min(high, 100))
    # The edges where a store's or a language's integers end, inside the field's range.
    edges = [edge for edge in ODD_INTEGERS if low <= edge <= high]
    return st.one_of(st.integers(low, high), st.sampled_from(edges))


def _single(field: FieldDescriptor, depth: int, odd: bool) -> st.SearchStrategy:
    if field.type == F.TYPE_MESSAGE and field.message_type == Timestamp.DESCRIPTOR:
        return _timestamps(odd)
    if field.type == F.TYPE_MESSAGE:
        return _messages(field.message_type, depth + 1)  # which draws its own odd fields
    if field.type == F.TYPE_STRING:
        return _strings(field.name, odd)
    if field.type in INTEGER_RANGES:
        return _integers(*INTEGER_RANGES[field.type], odd)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=32)
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(width=32 if field.type == F.TYPE_FLOAT else 64)
    raise AssertionError(f"no strategy for {field.full_name}: teach this test its type")


def _values(field: FieldDescriptor, depth: int, odd: bool) -> st.SearchStrategy:
    single = _single(field, depth, odd)
    return st.lists(single, max_size=3) if field.is_repeated else single


def _is_choice(field: FieldDescriptor) -> bool:
    """A member of a real oneof; proto3 `optional` fields have a oneof of their own."""
    return field.containing_oneof is not None and len(field.containing_oneof.fields) > 1


@st.composite
def _messages(draw, descriptor: Descriptor, depth: int = 0):
    """A message of plausible and odd field values. A field without presence is always set;
    one with presence (a message, a proto3 `optional`) may be left out; of a oneof, at most
    one member is set."""
    assert depth <= MESSAGE_DEPTH_MAX, descriptor.full_name
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not _is_choice(field) and (not field.has_presence or draw(PRESENT)):
            _set(message, field, draw(_values(field, depth, draw(ODD))))
    for oneof in descriptor.oneofs:
        if len(oneof.fields) == 1:
            continue  # a proto3 `optional`, drawn with the plain fields above
        member = draw(st.none() | st.sampled_from(list(oneof.fields)))
        if member is not None:
            _set(message, member, draw(_values(member, depth, draw(ODD))))
    return message


def _set(message, field: FieldDescriptor, value) -> None:
    if field.is_repeated:
        getattr(message, field.name).extend(value)
    elif field.type == F.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _truncations(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, max(len(data) - 1, 0)).map(lambda end: data[:end])


def _payloads(method: MethodDescriptor) -> st.SearchStrategy[bytes]:
    encoded = _messages(method.input_type).map(lambda message: message.SerializeToString())
    # Whole encodings three times in five: they are what reaches conversion and the engine.
    return st.one_of(
        st.binary(max_size=64), encoded.flatmap(_truncations), encoded, encoded, encoded
    )


PAYLOADS = {method.name: _payloads(method) for method in METHODS}


@pytest.fixture(scope="module")
def last_position(server):
    """Reads the event log's last notification id, through a store of the test's own."""
    with Ledger(server.database_url) as ledger:
        yield lambda: log_size(ledger.log)


@pytest.fixture(scope="module")
def new_log_text(server):
    """Returns what the server has logged since the previous call."""
    with open(server.log, encoding="utf-8", errors="replace") as log:
        log.read()
        yield log.read


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_any_request_is_answered_or_refused_as_invalid_and_refusals_store_nothing(
    server, channel, last_position, new_log_text, method
):
    """Random, truncated and randomly filled requests never get INTERNAL or UNKNOWN."""
    accepted = {StatusCode.OK, StatusCode.INVALID_ARGUMENT, *ALSO_ACCEPTED.get(method.name, ())}

    @settings(SETTINGS, max_examples=EXAMPLES[method.server_streaming])
    @given(payload=PAYLOADS[method.name])
    def exchange(payload: bytes) -> None:
        before = last_position()
        code, details = raw_call(channel, method, payload, server.tokens["admin"])
        # Read before asserting, so that one failure's log is not blamed on the next example.
        logged, stored = new_log_text(), last_position() != before
        assert code in accepted, (code, details)
        assert code is not StatusCode.INVALID_ARGUMENT or FIELD_FIRST.match(details), details
        assert code in ANSWERED or not stored, f"{code.name} stored events: {details}"
        assert "Traceback" not in logged and '"level":"error"' not in logged, logged[-2000:]

    exchange()
