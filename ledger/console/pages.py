"""The console's read-only pages: players, one player, statement (and CSV), accounts,
suspense queue, pending withdrawals and the views' status. Each answers from the projections
with bounded queries; none folds the log."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from ledger.console.actions import new_idempotency_key
from ledger.console.chart import daily_chart
from ledger.console.context import render, session_of
from ledger.console.reads import STATEMENT_COLUMNS
from ledger.console.security import CONSOLE_ROLES, Session
from ledger.core import limits

POSITION_END = 2**62  # "before the end": the newest statement page


def _search():
    """A bounded text parameter; a new Query each time (FastAPI must not share one)."""
    return Query("", max_length=limits.console_search_length_max)


def signed_in(context, request: Request) -> Session | None:
    """The session of a client allowed to see pages, or None."""
    session = session_of(context, request)
    if session is None or session.principal is None or session.role not in CONSOLE_ROLES:
        return None
    return session


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303)


def add_page_routes(app: FastAPI, context) -> None:
    @app.get("/")
    def home(request: Request):
        return RedirectResponse("/players" if signed_in(context, request) else "/signin", 303)

    @app.get("/players", response_class=HTMLResponse)
    def players(request: Request, q: str = _search(), after: str = _search()):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        ids, next_after = context.reads.players(q.strip(), after)
        return render(
            context, request, "players.html", session, players=ids, q=q, next_after=next_after
        )

    @app.get("/players/{player_id}", response_class=HTMLResponse)
    def player(request: Request, player_id: str):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        wallets = context.reads.wallets(player_id)
        status = 200 if wallets else 404
        return render(
            context,
            request,
            "player.html",
            session,
            status,
            player_id=player_id,
            wallets=wallets,
            new_key=new_idempotency_key,
        )

    @app.get("/players/{player_id}/statement", response_class=HTMLResponse)
    def statement(
        request: Request,
        player_id: str,
        currency: str = _search(),
        before: int = Query(POSITION_END, ge=1, le=POSITION_END),
    ):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        rows = limits.console_page_rows
        lines = context.reads.statement(player_id, currency, before, rows + 1)
        next_before = lines[rows - 1]["position"] if len(lines) > rows else None
        return render(
            context,
            request,
            "statement.html",
            session,
            player_id=player_id,
            currency=currency,
            lines=lines[:rows],
            next_before=next_before,
            columns=STATEMENT_COLUMNS,
        )

    @app.get("/players/{player_id}/statement.csv")
    def statement_csv(request: Request, player_id: str, currency: str = _search()):
        if signed_in(context, request) is None:
            return _to_sign_in()
        filename = f"statement-{_safe(player_id)}-{_safe(currency)}.csv"
        return StreamingResponse(
            _csv_rows(context, player_id, currency),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    _add_money_pages(app, context)


def _safe(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in text)[:64]


def _csv_rows(context, player_id: str, currency: str) -> Iterator[str]:
    """The statement, newest first, in pages, up to `console_csv_rows_max` lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STATEMENT_COLUMNS)
    before, written = POSITION_END, 0
    while written < limits.console_csv_rows_max:
        rows = min(limits.console_csv_page_rows, limits.console_csv_rows_max - written)
        lines = context.reads.statement(player_id, currency, before, rows)
        for line in lines:
            # A leading =, +, - or @ would make a spreadsheet evaluate the cell.
            writer.writerow([_inert(line[name]) for name in STATEMENT_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        written += len(lines)
        if len(lines) < rows:
            return
        before = lines[-1]["position"]
        if lines[0]["position"] == before:
            return  # one event larger than a page: its remaining lines are not split
    return


def _inert(value) -> str:
    text = str(value)
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    return text.lstrip("-").replace(".", "", 1).isdigit()


def _add_money_pages(app: FastAPI, context) -> None:
    @app.get("/accounts", response_class=HTMLResponse)
    def accounts(request: Request):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        charts = []
        for currency in context.reads.currencies():
            days = context.reads.daily(currency)
            chart = daily_chart(days, lambda minor, c=currency: context.reads.money(minor, c))
            charts.append((currency, chart))
        return render(
            context,
            request,
            "accounts.html",
            session,
            currencies=context.reads.accounts_by_currency(),
            charts=charts,
        )

    @app.get("/suspense", response_class=HTMLResponse)
    def suspense(request: Request):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        items = context.reads.suspense_queue()
        return render(
            context, request, "suspense.html", session, items=items, new_key=new_idempotency_key
        )

    @app.get("/withdrawals", response_class=HTMLResponse)
    def withdrawals(request: Request):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        return render(
            context,
            request,
            "withdrawals.html",
            session,
            withdrawals=context.reads.pending_withdrawals(),
            new_key=new_idempotency_key,
        )

    @app.get("/status", response_class=HTMLResponse)
    def status(request: Request):
        if (session := signed_in(context, request)) is None:
            return _to_sign_in()
        return render(
            context,
            request,
            "status.html",
            session,
            lag=context.lag(),
            position=context.store.position(),
            audit=context.store.last_audit(),
            now=datetime.now(UTC).isoformat(timespec="seconds"),
        )
