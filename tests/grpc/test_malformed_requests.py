"""Malformed requests against a real `ledger serve` on SQLite and PostgreSQL: every method of
LedgerService answers bytes it cannot decode with INVALID_ARGUMENT naming the request type,
never UNKNOWN with a Python class name, and only once the caller is authenticated."""

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from ledger.v1 import ledger_pb2 as pb

pytestmark = pytest.mark.slow

SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"]
METHODS = list(SERVICE.methods)
UNARY_TIMEOUT_S = 10.0
STREAM_TIMEOUT_S = 0.3  # a valid subscription follows the log live until its deadline
GARBAGE = b"\xff\xff\xff\xff"


def _call(channel, method: MethodDescriptor, payload: bytes, token: str | None):
    """Sends raw bytes to method; (status code, details) of the answer."""
    path = f"/{SERVICE.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if method.server_streaming:
            for _ in channel.unary_stream(path)(payload, metadata=metadata,
                                                timeout=STREAM_TIMEOUT_S):  # fmt: skip
                pass
        else:
            channel.unary_unary(path)(payload, metadata=metadata, timeout=UNARY_TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.target) as opened:
        yield opened


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_undecodable_bytes_are_invalid_argument_naming_the_request_type(server, channel, method):
    """Bytes that are no encoding of the request are INVALID_ARGUMENT on every method."""
    code, details = _call(channel, method, GARBAGE, server.tokens["admin"])
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"request: cannot be decoded as {method.input_type.full_name}"


@pytest.mark.parametrize("name", ["Bet", "GetTrialBalance", "SubscribeEvents"])
def test_an_anonymous_caller_sending_garbage_is_unauthenticated(server, channel, name):
    """Authentication comes before decoding: no token and garbage bytes give UNAUTHENTICATED."""
    code, _ = _call(channel, SERVICE.methods_by_name[name], GARBAGE, token=None)
    assert code is grpc.StatusCode.UNAUTHENTICATED
