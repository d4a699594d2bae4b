"""Server reflection answers over both protocol versions, v1 and v1alpha, without a token, so a
generic client (grpcurl, Postman, the Node example in docs/) discovers the contract at run time."""

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as wire  # v1's messages are byte-identical

pytestmark = pytest.mark.slow
TIMEOUT_S = 10
PATHS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}


def _ask(channel: grpc.Channel, version: str, **request) -> wire.ServerReflectionResponse:
    call = channel.stream_stream(
        PATHS[version],
        request_serializer=wire.ServerReflectionRequest.SerializeToString,
        response_deserializer=wire.ServerReflectionResponse.FromString,
    )
    [response] = call(iter([wire.ServerReflectionRequest(**request)]), timeout=TIMEOUT_S)
    return response


@pytest.mark.parametrize("version", PATHS)
def test_reflection_lists_every_service_over_both_versions(server, channel, version):
    """Both reflection services list the ledger, health and both reflection services."""
    response = _ask(channel, version, list_services="")
    assert {service.name for service in response.list_services_response.service} == {
        "ledger.v1.LedgerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize("version", PATHS)
def test_reflection_describes_the_ledger_service_with_its_dependencies(server, channel, version):
    """The service's file comes with the files it imports, enough to build any request."""
    response = _ask(channel, version, file_containing_symbol="ledger.v1.LedgerService")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    names = {file.name for file in files}
    assert {"ledger/v1/ledger.proto", "google/protobuf/timestamp.proto"} <= names
    [ledger] = [file for file in files if file.name == "ledger/v1/ledger.proto"]
    assert "GetTrialBalance" in {method.name for method in ledger.service[0].method}


def test_reflection_v1_describes_itself(server, channel):
    """The v1 service's own descriptor is served, under the v1 package."""
    response = _ask(channel, "v1", file_containing_symbol="grpc.reflection.v1.ServerReflection")
    [raw] = response.file_descriptor_response.file_descriptor_proto
    file = descriptor_pb2.FileDescriptorProto.FromString(raw)
    assert (file.package, file.service[0].name) == ("grpc.reflection.v1", "ServerReflection")
    method = file.service[0].method[0]
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
