"""Generated gRPC code for package ledger.v1: produced by `make protos`, never edited."""
