"""Structured logging for every process of the project (engine, server, adapters):
structlog JSON lines on standard error, configured once at startup, at the edge only.

Lines are rendered by msgspec, the project's serializer, straight to bytes: about half the
cost of the standard library's `json.dumps` per line (measured: docs/decisions.md, "Log
lines rendered by msgspec"), and the server writes one line per call.
"""

import logging
import sys

import msgspec
import structlog

_encoder = msgspec.json.Encoder(enc_hook=repr)  # unknown objects as their repr, like structlog's


def _render(event_dict: dict, **_: object) -> bytes:
    return _encoder.encode(event_dict)


def configure_logging(level: str = "info") -> None:
    """structlog, configured once at startup: JSON lines on standard error."""
    binary = getattr(sys.stderr, "buffer", None)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_render if binary else _text),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=(
            structlog.BytesLoggerFactory(binary)
            if binary
            else structlog.PrintLoggerFactory(sys.stderr)
        ),
        cache_logger_on_first_use=True,
    )


def _text(event_dict: dict, **_: object) -> str:
    """For a standard error without a byte buffer (some test runners replace it)."""
    return _render(event_dict).decode()
