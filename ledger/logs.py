"""Structured logging for every process of the project (engine, server, adapters):
structlog JSON lines on standard error, configured once at startup, at the edge only."""

import logging
import sys

import structlog


def configure_logging(level: str = "info") -> None:
    """structlog, configured once at startup: JSON lines on standard error."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
