"""CoinsPaid-style payment callbacks: signed webhooks → deposit state machine → engine gRPC."""

from adapters.payments.app import Settings, create_app
from adapters.payments.state import CallbackStore

__all__ = ["CallbackStore", "Settings", "create_app"]
