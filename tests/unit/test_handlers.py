"""The LedgerService's method handlers: one per method of the descriptor, and request
deserializers that hand the servicer a marker instead of raising on undecodable bytes."""

import grpc
import pytest

from ledger.api.handlers import Undecodable, method_handlers, refuse_undecodable
from ledger.core.errors import InvalidArgument
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"]
HANDLERS = method_handlers(SERVICE, pb_grpc.LedgerServiceServicer())


def test_every_method_of_the_service_gets_a_handler_of_its_kind():
    """Each method of the descriptor has a handler, streaming exactly where the contract says."""
    assert set(HANDLERS) == {method.name for method in SERVICE.methods}
    for method in SERVICE.methods:
        handler = HANDLERS[method.name]
        assert isinstance(handler, grpc.RpcMethodHandler)
        assert (handler.request_streaming, handler.response_streaming) == (
            False,
            method.server_streaming,
        )


def test_valid_bytes_decode_to_the_request_message():
    """A valid encoding deserializes to the method's request message, field for field."""
    request = pb.BetRequest(idempotency_key="k", provider="hub88", amount="1")
    decoded = HANDLERS["Bet"].request_deserializer(request.SerializeToString())
    assert decoded == request


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xc3\x28", b"\x08"],
    ids=["corrupt", "truncated", "invalid-utf8", "missing-value"],
)
def test_undecodable_bytes_become_a_marker_naming_the_message_type(data):
    """Bytes that are not a BetRequest become a marker, never an exception out of grpc."""
    decoded = HANDLERS["Bet"].request_deserializer(data)
    assert isinstance(decoded, Undecodable)
    with pytest.raises(InvalidArgument) as caught:
        refuse_undecodable(decoded)
    assert str(caught.value) == "request: cannot be decoded as ledger.v1.BetRequest"


def test_a_decoded_request_passes_the_undecodable_check():
    """refuse_undecodable lets every real message through untouched."""
    refuse_undecodable(pb.GetTrialBalanceRequest())
