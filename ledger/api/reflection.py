"""Server reflection over both protocol versions: `grpc.reflection.v1` and `v1alpha`.

grpcio-reflection ships only v1alpha (grpc/grpc#38576), while newer generic clients ask for v1
first. The two protocols are the same messages under two package names, field for field, so
their bytes are identical: one v1alpha servicer answers both services, registered under each
name with the same (de)serializers. So that a client can describe the v1 service like any
other, the v1 file's descriptor, which is v1alpha's under the new package, is added to the
descriptor pool the servicer reads. When grpcio-reflection ships v1, use its servicer instead.
"""

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serves reflection v1 and v1alpha on server, listing service_names and themselves."""
    _add_v1_descriptor(descriptor_pool.Default())
    names = (*service_names, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=v1alpha.ServerReflectionRequest.FromString,
            response_serializer=v1alpha.ServerReflectionResponse.SerializeToString,
        )
    }
    for name in (V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Adds the v1 reflection file to pool, unless it holds one (a second server, a newer
    grpcio-reflection)."""
    try:
        pool.FindFileByName(_V1_FILE_NAME)
        return
    except KeyError:
        pass
    pool.AddSerializedFile(_v1_file().SerializeToString())


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """v1alpha's file descriptor with every name moved to the v1 package."""
    file = descriptor_pb2.FileDescriptorProto()
    v1alpha.DESCRIPTOR.CopyToProto(file)
    old_prefix, new_prefix = f".{file.package}.", f".{_V1_PACKAGE}."
    assert file.package == "grpc.reflection.v1alpha"
    assert not file.dependency  # nothing outside the file to rename
    file.name, file.package = _V1_FILE_NAME, _V1_PACKAGE
    file.ClearField("options")  # v1alpha's language package options name v1alpha
    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # set only for message fields: proto2 presence
                field.type_name = field.type_name.replace(old_prefix, new_prefix, 1)
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old_prefix, new_prefix, 1)
            method.output_type = method.output_type.replace(old_prefix, new_prefix, 1)
    return file
