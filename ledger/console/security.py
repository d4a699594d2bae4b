"""Sessions, CSRF tokens and response headers of the web console.

Rules:
- A session is a signed cookie (itsdangerous, HMAC-SHA1 over the payload with a key drawn
  at start-up): it holds the signed-in client's name and role and the session's CSRF token,
  never the bearer token. A restart signs everyone out, so there is no key to configure.
- The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
  it) and expires with `limits.console_session_s_max`.
- Every form carries the session's CSRF token; a POST whose token differs is refused before
  anything else is read. Comparison is constant-time.
- Every response carries a Content-Security-Policy that allows no script at all and styles
  only from the console itself, plus the usual no-sniff, no-frame and no-referrer headers.
"""

import hmac
import secrets

import msgspec
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ledger.api.auth import Principal
from ledger.core import limits

SESSION_COOKIE = "ledger_console"
CONSOLE_ROLES = frozenset({"backoffice", "auditor", "admin"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """What the cookie carries: the CSRF token, and the client once signed in."""

    csrf: str
    name: str | None = None
    role: str | None = None

    @property
    def principal(self) -> Principal | None:
        if self.name is None or self.role is None:
            return None
        return Principal(name=self.name, role=self.role)


class SessionCodec:
    """Signs sessions into cookie values and back; a forged or stale cookie reads as none."""

    def __init__(self, key: bytes | None = None) -> None:
        self._serializer = URLSafeTimedSerializer(
            key or secrets.token_bytes(32), salt="ledger-console-session"
        )

    def new(self) -> Session:
        return Session(csrf=secrets.token_urlsafe(32))

    def encode(self, session: Session) -> str:
        return self._serializer.dumps(msgspec.to_builtins(session))

    def decode(self, value: str | None) -> Session | None:
        if not value or len(value) > limits.console_cookie_length_max:
            return None
        try:
            payload = self._serializer.loads(value, max_age=limits.console_session_s_max)
            return msgspec.convert(payload, Session)
        except (BadSignature, msgspec.ValidationError):
            return None


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf, submitted)


def cookie_settings(secure: bool) -> dict:
    """The attributes of the session cookie (Secure only when served over TLS)."""
    return {
        "key": SESSION_COOKIE,
        "max_age": limits.console_session_s_max,
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
        "path": "/",
    }
