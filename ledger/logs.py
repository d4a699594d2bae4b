"""Structured logging for every process of the project (engine, server, adapters):
structlog JSON lines on standard error, configured once at startup, at the edge only.

Lines are rendered by msgspec, the project's serializer, straight to bytes: about half the
cost of the standard library's `json.dumps` per line (measured: docs/decisions.md, "Log
lines rendered by msgspec"), and the server writes one line per call.
"""

import logging
import sys
import time
from datetime import UTC, datetime

import msgspec
import structlog

_encoder = msgspec.json.Encoder(enc_hook=repr)  # unknown objects as their repr, like structlog's


def _render(event_dict: dict, **_: object) -> bytes:
    return _encoder.encode(event_dict)


# The second last stamped and its text. Replaced whole by one assignment, never mutated, so
# threads that log at once at worst both format the same second.
_second_text: tuple[int, str] = (-1, "")


def iso_utc(now_ns: int) -> str:
    """now_ns as structlog's `TimeStamper(fmt="iso", utc=True)` writes it (isoformat with
    `Z`, no fraction on a whole second), with the date and time of day formatted once a
    second: building and formatting a datetime per line cost more than the rest of the
    timestamp."""
    global _second_text
    seconds, micros = divmod(now_ns // 1000, 1_000_000)
    cached = _second_text
    if cached[0] != seconds:
        text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second_text = (seconds, text)
    return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"


def _stamp(_logger: object, _method: str, event_dict: dict) -> dict:
    event_dict["timestamp"] = iso_utc(time.time_ns())
    return event_dict


def configure_logging(level: str = "info") -> None:
    """structlog, configured once at startup: JSON lines on standard error."""
    binary = getattr(sys.stderr, "buffer", None)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _stamp,
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
