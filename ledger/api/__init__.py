"""The gRPC face of the ledger: contract conversion, auth, group commit, server."""
