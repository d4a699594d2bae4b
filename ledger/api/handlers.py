"""The gRPC method handlers of a service, built from its descriptor, whose request
deserializers never raise.

The generated `add_..._to_server` registers each message class's `FromString` as the request
deserializer. grpc runs it before any of our code, and when it raises (bytes that are not an
encoding of the message: corrupt, truncated, invalid UTF-8 in a string) grpc answers UNKNOWN
with the exception's class name and message, and the servicer never sees the call. Here every
deserializer returns an `Undecodable` marker instead, and the servicer refuses the marker as
INVALID_ARGUMENT once it has authenticated the caller, so an anonymous client learns nothing
about parsing and every status still comes from `ledger.api.status`.

Built from the descriptor rather than listed by hand, so a method added to the `.proto` gets
the same deserializer without anyone remembering to.
"""

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from ledger.core.errors import InvalidArgument


class Undecodable:
    """Stands in for a request whose bytes do not decode as its message type."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def error(self) -> InvalidArgument:
        return InvalidArgument("request", f"cannot be decoded as {self.type_name}")


def refuse_undecodable(request: object) -> None:
    """Raises InvalidArgument when the request's bytes did not decode."""
    if isinstance(request, Undecodable):
        raise request.error()


def _deserializer(method: MethodDescriptor):
    parse = message_factory.GetMessageClass(method.input_type).FromString
    undecodable = Undecodable(method.input_type.full_name)

    def deserialize(data: bytes):
        try:
            return parse(data)
        except Exception:  # DecodeError, and whatever else a parser may raise on hostile bytes
            return undecodable

    return deserialize


def _handler(servicer, method: MethodDescriptor) -> grpc.RpcMethodHandler:
    # The service has no client-streaming methods; one would need a handler kind of its own.
    assert not method.client_streaming, method.full_name
    kind = (
        grpc.unary_stream_rpc_method_handler
        if method.server_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    response_class = message_factory.GetMessageClass(method.output_type)
    return kind(
        getattr(servicer, method.name),
        request_deserializer=_deserializer(method),
        response_serializer=response_class.SerializeToString,
    )


def method_handlers(service: ServiceDescriptor, servicer) -> dict[str, grpc.RpcMethodHandler]:
    """One handler per method of service, each calling the servicer's method of that name."""
    return {method.name: _handler(servicer, method) for method in service.methods}


def add_service(server: grpc.aio.Server, service: ServiceDescriptor, servicer) -> None:
    """Registers servicer for service on server, as the generated code would, but with
    deserializers that hand the servicer an `Undecodable` instead of raising."""
    handlers = method_handlers(service, servicer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    # What the generated code also does: lets grpc route registered methods without the
    # generic lookup.
    server.add_registered_method_handlers(service.full_name, handlers)
