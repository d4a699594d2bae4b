"""Raw calls to LedgerService, bytes in and status out, for tests that send what no client
would; methods come from the service descriptor, so a new one is covered without a list."""

import grpc
from google.protobuf.descriptor import MethodDescriptor

from ledger.v1 import ledger_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["LedgerService"]
METHODS = list(SERVICE.methods)
UNARY_TIMEOUT_S = 10.0  # generous: a shared 2-core machine may be slow, never this slow
STREAM_TIMEOUT_S = 0.3  # a valid subscription follows the log live until its deadline


def raw_call(
    channel: grpc.Channel, method: MethodDescriptor, payload: bytes, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """Sends payload as method's request; the answer's status code and details."""
    path = f"/{SERVICE.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path)(
                payload, metadata=metadata, timeout=STREAM_TIMEOUT_S
            )
            for _ in stream:
                pass
        else:
            channel.unary_unary(path)(payload, metadata=metadata, timeout=UNARY_TIMEOUT_S)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""
