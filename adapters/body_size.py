"""A bound on request bodies, enforced before any of the body reaches the app.

Both HTTP adapters verify a signature over the raw body, so they must hold the body whole
before they can refuse it; without a bound a client could make them buffer any amount first.
The rules this middleware keeps:

- A declared `Content-Length` above the bound is answered 413 at once: nothing of the body is
  read, and a client waiting for `100 Continue` never gets it.
- Otherwise the body is read here, counting as it streams, so a chunked body (which declares
  no length) is cut off as soon as it passes the bound, not when it ends.
- A refusal closes the connection (`Connection: close`), so the server does not go on
  reading and discarding the rest of an oversized body.
- The app then receives the body, at most the bound, as one message; it never sees a refused
  request at all.

Starlette's `RequestBodyLimitMiddleware` (behind FastAPI's `max_body_size`) is not used: it
raises from inside the app's `receive`, after the app has started, and leaves the connection
open, so the server goes on reading the rest of the body only to throw it away.
"""

import json

import structlog

_log = structlog.get_logger("adapters.http")


class _Disconnected(Exception):
    """The client went away before its body was complete: there is nobody to answer."""


class BodySizeLimit:
    """ASGI middleware: a request body above body_size_max bytes is answered 413."""

    def __init__(self, app, body_size_max: int) -> None:
        assert body_size_max > 0, body_size_max
        self.app = app
        self.body_size_max = body_size_max

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.body_size_max:
            await self._refuse(scope, send, declared)
            return
        try:
            body = await _read_bounded(receive, self.body_size_max)
        except _Disconnected:
            return
        if body is None:
            await self._refuse(scope, send, declared)
            return
        assert len(body) <= self.body_size_max
        await self.app(scope, _replaying(body, receive), send)

    async def _refuse(self, scope, send, declared: int | None) -> None:
        _log.warning(
            "http_body_too_large",
            path=scope.get("path"),
            declared_length=declared,
            body_size_max=self.body_size_max,
        )
        content = json.dumps({"error": f"request body exceeds {self.body_size_max} bytes"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _declared_length(scope) -> int | None:
    """The request's Content-Length, or None without one (the server has checked its syntax)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def _read_bounded(receive, body_size_max: int) -> bytes | None:
    """The whole body, or None as soon as more than body_size_max bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > body_size_max:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive):
    """A receive callable that hands the app the buffered body, then defers to the server."""
    delivered = False

    async def replay():
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
