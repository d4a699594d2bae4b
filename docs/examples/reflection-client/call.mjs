// A generic gRPC client for ledger.v1 that has no copy of the ledger's .proto. It asks the
// server's reflection service (grpc.reflection.v1) which services there are and for the
// descriptors of ledger.v1.LedgerService, builds the message types from them at run time,
// and calls the service with a bearer token. What it knows in advance is only standard:
// the reflection protocol and google.rpc's error details, declared below.
//
//   LEDGER_TARGET=127.0.0.1:50051 LEDGER_TOKEN=... node call.mjs
//
// Optional: LEDGER_CA (a PEM file: TLS), LEDGER_PLAYER, LEDGER_KEY (the deposit's idempotency
// key; resend with the same one and the answer is DUPLICATE). Prints one JSON line per step.

import { readFileSync } from "node:fs";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const STANDARD = protobuf.parse(`
  syntax = "proto3";
  package grpc.reflection.v1;
  message ServerReflectionRequest {
    string host = 1;
    oneof message_request {
      string file_by_filename = 3;
      string file_containing_symbol = 4;
      string list_services = 7;
    }
  }
  message ServerReflectionResponse {
    string valid_host = 1;
    ServerReflectionRequest original_request = 2;
    oneof message_response {
      FileDescriptorResponse file_descriptor_response = 4;
      ListServiceResponse list_services_response = 6;
      ErrorResponse error_response = 7;
    }
  }
  message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
  message ListServiceResponse { repeated ServiceResponse service = 1; }
  message ServiceResponse { string name = 1; }
  message ErrorResponse { int32 error_code = 1; string error_message = 2; }
`, { keepCase: true }).root;
protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message Any { string type_url = 1; bytes value = 2; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
  message RetryInfo { Duration retry_delay = 1; }
  message Duration { int64 seconds = 1; int32 nanos = 2; }
`, STANDARD, { keepCase: true });

const Request = STANDARD.lookupType("grpc.reflection.v1.ServerReflectionRequest");
const Response = STANDARD.lookupType("grpc.reflection.v1.ServerReflectionResponse");
const REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const DEADLINE_MS = 10_000;

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

// One request on the reflection stream, its one response.
function reflect(client, request) {
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      REFLECTION,
      (message) => Buffer.from(Request.encode(Request.fromObject(message)).finish()),
      (bytes) => Response.decode(bytes),
      new grpc.Metadata(),
      { deadline: deadline() },
    );
    call.on("data", (response) => {
      if (response.error_response) reject(new Error(response.error_response.error_message));
      else resolve(response);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  });
}

// The LedgerService constructor, from the descriptors reflection serves: the ledger's file and
// every file it imports, wrapped as the FileDescriptorSet proto-loader reads.
async function discover(target, credentials) {
  const client = new grpc.Client(target, credentials);
  const listed = await reflect(client, { list_services: "" });
  const services = listed.list_services_response.service.map((service) => service.name);
  const described = await reflect(client, { file_containing_symbol: "ledger.v1.LedgerService" });
  const set = protobuf.Writer.create();
  for (const file of described.file_descriptor_response.file_descriptor_proto) {
    set.uint32(10).bytes(file); // FileDescriptorSet.file, field 1, length-delimited
  }
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(set.finish()), {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
  });
  client.close();
  return { services, LedgerService: grpc.loadPackageDefinition(definition).ledger.v1.LedgerService };
}

// The google.rpc.Status a refusal carries in its trailer, with the details this client knows.
function refusal(error) {
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  const answer = { code: grpc.status[error.code], message: error.details };
  if (!raw) return answer;
  const status = STANDARD.lookupType("google.rpc.Status").decode(raw);
  for (const detail of status.details) {
    const name = detail.type_url.split("/").pop();
    if (name === "google.rpc.BadRequest" || name === "google.rpc.RetryInfo") {
      const message = STANDARD.lookupType(name).decode(detail.value);
      answer[name.split(".").pop()] = message.toJSON();
    }
  }
  return answer;
}

function call(service, method, request, metadata) {
  return new Promise((resolve, reject) => {
    service[method](request, metadata, { deadline: deadline() }, (error, reply) =>
      error ? reject(error) : resolve(reply));
  });
}

async function main() {
  const target = process.env.LEDGER_TARGET ?? "127.0.0.1:50051";
  const credentials = process.env.LEDGER_CA
    ? grpc.credentials.createSsl(readFileSync(process.env.LEDGER_CA))
    : grpc.credentials.createInsecure();
  const { services, LedgerService } = await discover(target, credentials);
  console.log(JSON.stringify({ services }));

  const ledger = new LedgerService(target, credentials);
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${process.env.LEDGER_TOKEN}`);
  const player = process.env.LEDGER_PLAYER ?? "reflection-example";
  const deposit = {
    idempotency_key: process.env.LEDGER_KEY ?? `deposit-${Date.now()}`,
    player_id: player, currency: "EUR", amount: "10.50", rail: "psp", rail_id: "stripe",
  };
  console.log(JSON.stringify({ deposit: await call(ledger, "Deposit", deposit, metadata) }));
  try {
    await call(ledger, "Deposit", { ...deposit, idempotency_key: "malformed", amount: "1e3" },
      metadata);
  } catch (error) {
    console.log(JSON.stringify({ refusal: refusal(error) }));
  }
  ledger.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
