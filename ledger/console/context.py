"""What every console request shares: the context (ledger, read store, clients, session
key), the session lookup, page rendering and bounded form reading."""

import time
from pathlib import Path
from urllib.parse import parse_qs

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ledger.api.auth import Authenticator
from ledger.console.actions import allowed_actions
from ledger.console.reads import Reads
from ledger.console.security import SESSION_COOKIE, Session, SessionCodec, cookie_settings
from ledger.core import limits
from ledger.event_log import log_size
from ledger.service.application import Ledger
from projections.stores import ProjectionStore

HERE = Path(__file__).parent


class ConsoleContext:
    """What every request needs: the ledger, the read store, the clients, the session key."""

    def __init__(
        self,
        ledger: Ledger,
        store: ProjectionStore,
        authenticator: Authenticator,
        *,
        secure_cookies: bool = False,
        codec: SessionCodec | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.reads = Reads(store, ledger.rules.currencies)
        self.authenticator = authenticator
        self.codec = codec or SessionCodec()
        self.secure_cookies = secure_cookies
        # Autoescape on for every template: a player id or key never becomes markup.
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True
        )
        self.templates = Jinja2Templates(env=environment)

    def lag(self) -> int:
        """Events in the log not yet in the views the console reads."""
        return log_size(self.ledger.log) - self.store.position()

    def wait_for_views(self) -> bool:
        """Waits (bounded) until the views hold every event written so far."""
        deadline = time.monotonic() + limits.console_view_wait_s_max
        while self.lag() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def session_of(context: ConsoleContext, request: Request) -> Session | None:
    return context.codec.decode(request.cookies.get(SESSION_COOKIE))


def render(
    context: ConsoleContext,
    request: Request,
    template: str,
    session: Session,
    status_code: int = 200,
    **values,
) -> HTMLResponse:
    """A page, with the session cookie set (a new visitor gets one with its CSRF token)."""
    principal = session.principal
    values.update(session=session, principal=principal, csrf=session.csrf)
    values["allowed"] = allowed_actions(principal) if principal is not None else frozenset()
    response = context.templates.TemplateResponse(
        request, template, values, status_code=status_code
    )
    set_session(context, response, session)
    return response


def set_session(context: "ConsoleContext", response, session: Session) -> None:
    cookie = cookie_settings(context.secure_cookies)
    response.set_cookie(value=context.codec.encode(session), **cookie)


async def read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form, first value of each field; None if it is too large."""
    declared = request.headers.get("content-length")
    size_max = limits.console_form_bytes_max
    if declared is not None and (not declared.isdigit() or int(declared) > size_max):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.console_form_bytes_max:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=64)
    return {name: values[0] for name, values in fields.items()}
