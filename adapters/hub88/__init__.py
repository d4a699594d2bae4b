"""Hub88-style seamless wallet: a signed HTTP face for game providers over the engine's gRPC API."""

from adapters.hub88.app import Settings, create_app

__all__ = ["Settings", "create_app"]
