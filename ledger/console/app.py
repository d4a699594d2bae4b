"""The web console: server-rendered pages (FastAPI, Jinja2 with autoescape) over the
projections, and back-office actions through the ledger's own command path.

Rules:
- Only `backoffice`, `auditor` and `admin` clients sign in (with the bearer token of the
  auth config the gRPC server reads); any other role, or no session, sees no page.
- What a client may do is what the gRPC role table lets its role call: the action forms are
  drawn only for those, and each submission is authorized again before anything runs.
- Every POST carries the session's CSRF token, checked before the body is otherwise read.
- Logs name the client, the action, the idempotency key and the outcome; never a token.
"""

from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import PermissionDenied, Unauthenticated, authorize
from ledger.console import pages
from ledger.console.actions import ACTIONS
from ledger.console.context import (
    HERE,
    ConsoleContext,
    read_form,
    render,
    session_of,
    set_session,
)
from ledger.console.security import (
    CONSOLE_ROLES,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Session,
    csrf_matches,
)
from ledger.core.errors import InvalidArgument

_log = structlog.get_logger("ledger.console")


def create_app(context: ConsoleContext) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = context
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    _sign_in_routes(app, context)
    pages.add_page_routes(app, context)
    _action_routes(app, context)
    return app


def _sign_in_routes(app: FastAPI, context: ConsoleContext) -> None:
    @app.get("/signin", response_class=HTMLResponse)
    def sign_in_page(request: Request):
        session = session_of(context, request) or context.codec.new()
        return render(context, request, "signin.html", session)

    @app.post("/signin", response_class=HTMLResponse)
    async def sign_in(request: Request):
        session = session_of(context, request)
        form = await read_form(request)
        if session is None or form is None or not csrf_matches(session, form.get("csrf")):
            return _refused(context, request, "The form expired: open the sign-in page again.")
        try:
            principal = context.authenticator.authenticate(f"Bearer {form.get('token', '')}")
        except Unauthenticated:
            _log.info("console sign-in refused", reason="unknown token")
            return render(
                context,
                request,
                "signin.html",
                context.codec.new(),
                401,
                error="That token is not valid.",
            )
        if principal.role not in CONSOLE_ROLES:
            _log.info("console sign-in refused", client=principal.name, role=principal.role)
            return render(
                context,
                request,
                "signin.html",
                context.codec.new(),
                403,
                error=f"Role {principal.role} may not use the console.",
            )
        _log.info("console sign-in", client=principal.name, role=principal.role)
        signed_in = Session(csrf=context.codec.new().csrf, name=principal.name, role=principal.role)
        response = RedirectResponse("/players", status_code=303)
        set_session(context, response, signed_in)
        return response

    @app.post("/signout")
    async def sign_out(request: Request):
        session = session_of(context, request)
        form = await read_form(request)
        if session is None or form is None or not csrf_matches(session, form.get("csrf")):
            return _refused(context, request, "The form expired: open the page again.")
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _refused(context: ConsoleContext, request: Request, message: str, status: int = 403):
    session = context.codec.new()
    return render(context, request, "error.html", session, status, message=message)


def _action_routes(app: FastAPI, context: ConsoleContext) -> None:
    @app.post("/actions/{name}", response_class=HTMLResponse)
    async def act(request: Request, name: str):
        session = session_of(context, request)
        form = await read_form(request)
        if session is None or form is None or not csrf_matches(session, form.get("csrf")):
            return _refused(context, request, "The form expired or was not ours: nothing was done.")
        principal = session.principal
        if principal is None or principal.role not in CONSOLE_ROLES:
            return RedirectResponse("/signin", status_code=303)
        action = ACTIONS.get(name)
        if action is None:
            return render(context, request, "error.html", session, 404, message="No such action.")
        try:
            authorize(principal, action.method, None)
        except PermissionDenied as error:
            return render(context, request, "error.html", session, 403, message=error.reason)
        return await run_in_threadpool(_execute, context, request, session, name, form)


def _execute(context: ConsoleContext, request: Request, session: Session, name: str, form: dict):
    principal = session.principal
    key = form.get("idempotency_key", "")
    try:
        command = ACTIONS[name].build(form, context.ledger.rules.currencies)
        result = context.ledger.execute(command)
    except InvalidArgument as error:
        _log.info(
            "console action refused", client=principal.name, action=name, key=key, field=error.field
        )
        return render(
            context,
            request,
            "result.html",
            session,
            400,
            action=name,
            key=key,
            error=error,
            form=form,
        )
    _log.info(
        "console action",
        client=principal.name,
        role=principal.role,
        action=name,
        key=key,
        outcome=result.outcome.value,
    )
    current = context.wait_for_views()
    player_id = getattr(command, "player_id", "") or form.get("player_id", "")
    statement = (
        (f"/players/{quote(player_id, safe='')}/statement?currency={quote(command.currency)}")
        if player_id
        else None
    )
    return render(
        context,
        request,
        "result.html",
        session,
        action=name,
        key=key,
        result=result,
        current=current,
        statement=statement,
        form=form,
    )
