"""The engine's error vocabulary. No transport imports: the gRPC layer maps these once."""


class LedgerError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidArgument(LedgerError):
    """Malformed input: names the offending field and why it is refused."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ChainBroken(LedgerError):
    """A stored wallet stream does not hash-chain or is not contiguous: tampering or corruption."""


class ConcurrencyExhausted(LedgerError):
    """Optimistic concurrency conflicts persisted past the retry bound."""


class NotATestStore(LedgerError):
    """An operation only a test store allows (advancing its clock) on a production store."""
