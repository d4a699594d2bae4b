"""A CoinsPaid-style payment callback receiver as a FastAPI app over the engine's gRPC API.

Each POST /callbacks goes: a body-size bound (413), a signature check on the raw body (401,
nothing read or recorded), then strict parsing with the engine's exact amount rules (400
naming the bad field, logged as an error, nothing recorded), then, under the store's lock, a
dedupe on (callback type and id, status), the deposit state machine from
`protocol.DEPOSIT_STEPS` or the withdrawal step, at most one engine call, and one SQLite
transaction recording the callback and the new state. An engine that stays unreachable
through the client's bounded retries answers 503 and records nothing, so the processor's own
retry finds everything as it was.

Engine keys: a deposit is `{processor}:{txid}`, its reversal `{processor}:{txid}:reversal`;
a withdrawal step is `{foreign_id}:complete` or `{foreign_id}:fail`, where `foreign_id` is
the idempotency key the cashier used for RequestWithdrawal. A DUPLICATE reply is judged by
its original outcome, so a retried credit that the engine refused stays refused.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import structlog
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from adapters import limits
from adapters.body_size import BodySizeLimit
from adapters.payments import protocol as p
from adapters.payments.state import CallbackStore, Deposit
from ledger.client import (
    DEFAULT_CURRENCIES,
    Currency,
    InvalidRequest,
    LedgerCallError,
    LedgerClient,
    Reply,
)

_log = structlog.get_logger("adapters.payments")


def default_currencies() -> dict[str, Currency]:
    """The engine's default currencies by code; an engine configured otherwise needs its own."""
    return {currency.code: currency for currency in DEFAULT_CURRENCIES}


@dataclass(frozen=True)
class Settings:
    """What the adapter needs besides the engine client, the secret and the store."""

    processor: str = "coinspaid"
    rail: str = "psp"
    # The engine's currencies: amounts are parsed with their scale, others refused.
    currencies: Mapping[str, Currency] = field(default_factory=default_currencies)


@dataclass(frozen=True)
class Result:
    """How one callback was handled: the outcome and, for a deposit, its local status."""

    outcome: str
    key: str
    deposit_status: str | None = None


def _accepted(reply: Reply) -> bool:
    """True when the engine applied the command now or did so for an earlier identical call."""
    effective = reply.original_outcome if reply.outcome == "DUPLICATE" else reply.outcome
    return effective == "OK"


def _credit(ledger: LedgerClient, settings: Settings, row: Deposit) -> Reply:
    return ledger.deposit(
        idempotency_key=row.key,
        player_id=row.player,
        currency=row.currency,
        amount=row.amount,
        rail=settings.rail,
        rail_id=settings.processor,
    )


def _reverse(ledger: LedgerClient, settings: Settings, row: Deposit) -> Reply:
    # The stored row, not the callback, gives player and amount: exactly what was credited.
    return ledger.reverse_deposit(
        idempotency_key=p.reversal_key(row.key),
        player_id=row.player,
        currency=row.currency,
        amount=row.amount,
        rail=settings.rail,
        rail_id=settings.processor,
        deposit_key=row.key,
    )


def _hold(ledger: LedgerClient, settings: Settings, row: Deposit, reason: str) -> Reply:
    """Money the engine would not credit is at the processor all the same: into suspense."""
    return ledger.hold_in_suspense(
        idempotency_key=p.suspense_key(row.key),
        currency=row.currency,
        amount=row.amount,
        rail=settings.rail,
        rail_id=settings.processor,
        reason=reason.lower(),
    )


def _return_held(ledger: LedgerClient, settings: Settings, row: Deposit) -> Reply:
    return ledger.return_suspense(
        idempotency_key=p.reversal_key(row.key),
        currency=row.currency,
        item_key=p.suspense_key(row.key),
    )


_ACTIONS = {p.CREDIT: _credit, p.REVERSE: _reverse, p.RETURN: _return_held}


def _apply_step(
    ledger: LedgerClient, settings: Settings, row: Deposit, step: tuple[str, str | None]
) -> tuple[str, Deposit]:
    """Run the step's engine action, if any; the outcome and the row to store."""
    new_status, action = step
    if action is None:
        return new_status.upper(), replace(row, status=new_status)
    reply = _ACTIONS[action](ledger, settings, row)
    if _accepted(reply):
        return reply.outcome, replace(row, status=new_status)
    if action == p.CREDIT:
        _log.warning("payments_credit_refused", key=row.key, outcome=reply.original_outcome)
        held = _hold(ledger, settings, row, reply.original_outcome)
        if not _accepted(held):
            _log.error("payments_suspense_hold_refused", key=row.key, outcome=held.outcome)
        return reply.outcome, replace(row, status=p.REFUSED)
    # A reversal refused, or a held item already resolved by the back office: a person's job.
    _log.error("payments_reversal_refused", key=row.key, outcome=reply.original_outcome)
    return reply.outcome, row


def handle_deposit(
    ledger: LedgerClient, store: CallbackStore, settings: Settings, callback: p.DepositCallback
) -> Result:
    """One deposit callback through dedupe, the state machine, the engine and the store."""
    key = p.deposit_key(settings.processor, callback.txid)
    with store.lock:
        seen = store.handled(callback.record_id, callback.status)
        current = store.deposit(key)
        if seen is not None:
            return Result("REPLAY", key, current.status if current else None)
        step = p.DEPOSIT_STEPS.get((current.status if current else None, callback.status))
        if step is None:
            store.record(callback.record_id, callback.status, "UNCHANGED")
            return Result("UNCHANGED", key, current.status if current else None)
        row = current
        if current is None or step[1] == p.CREDIT:
            # A credit uses the confirming callback's figures: `not_confirmed` may be early.
            row = Deposit(key, callback.player_id, callback.currency, callback.amount, "")
        outcome, stored = _apply_step(ledger, settings, row, step)
        store.record(callback.record_id, callback.status, outcome, stored)
        return Result(outcome, key, stored.status)


def handle_withdrawal(
    ledger: LedgerClient, store: CallbackStore, callback: p.WithdrawalCallback
) -> Result:
    """Complete or fail the named withdrawal; intermediate statuses are only recorded."""
    key = callback.withdrawal_key
    common = {"player_id": callback.player_id, "currency": callback.currency}
    with store.lock:
        if store.handled(callback.record_id, callback.status) is not None:
            return Result("REPLAY", key)
        if callback.status == "confirmed":
            reply = ledger.complete_withdrawal(
                idempotency_key=f"{key}:complete", withdrawal_key=key, **common
            )
            outcome = reply.outcome
        elif callback.status in ("cancelled", "declined"):
            reply = ledger.fail_withdrawal(
                idempotency_key=f"{key}:fail", withdrawal_key=key, **common
            )
            outcome = reply.outcome
        else:
            outcome = "PENDING"
        store.record(callback.record_id, callback.status, outcome)
        return Result(outcome, key)


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status_code)


def _answer(handle: Callable[[], Result]) -> JSONResponse:
    """Run a handler and answer it, mapping engine errors to 400 (bad request) or 503.

    Only a malformed request is the sender's fault, so a retry cannot help; anything else
    (unreachable, unauthenticated, internal) is 503 so the processor retries later."""
    try:
        result = handle()
    except InvalidRequest as error:
        return _error(400, f"engine refused: {error.message}")
    except LedgerCallError as error:
        return _error(503, f"engine unavailable: {error.status}")
    body = {"ok": True, "outcome": result.outcome, "key": result.key}
    if result.deposit_status is not None:
        body["deposit_status"] = result.deposit_status
    return JSONResponse(body)


def _log_callback(response: JSONResponse, callback: object, started: float) -> None:
    _log.info(
        "payments_callback",
        http_status=response.status_code,
        type=type(callback).__name__ if callback else None,
        callback_id=getattr(callback, "callback_id", None),
        status=getattr(callback, "status", None),
        body=response.body.decode(),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def create_app(
    ledger: LedgerClient, store: CallbackStore, secret: bytes, settings: Settings = Settings()
) -> FastAPI:
    """The callback app. The caller owns the client and the store and closes them."""
    assert secret, "an empty HMAC secret would accept anyone's signature"
    assert 0 < len(settings.processor) <= limits.processor_length_max, settings.processor
    app = FastAPI(
        title="Casino ledger: CoinsPaid-style payment callbacks",
        version="1.0",
        description="Signed (X-Processing-Signature, HMAC-SHA512 hex of the raw body).",
    )
    # An oversized body is refused before it is read whole or its signature checked.
    app.add_middleware(BodySizeLimit, body_size_max=limits.body_size_max)

    @app.post("/callbacks")
    async def callbacks(request: Request) -> JSONResponse:
        """Verify, dedupe and apply one processor callback."""
        started, callback = time.perf_counter(), None
        body = await request.body()
        if not p.signature_is_valid(secret, body, request.headers.get(p.SIGNATURE_HEADER)):
            response = _error(401, "invalid signature")
        else:
            try:
                callback = p.parse_callback(body, settings.currencies)
            except p.CallbackError as error:
                _log_refusal(body, error)
                response = _error(400, str(error))
            else:
                response = await run_in_threadpool(_dispatch, ledger, store, settings, callback)
        _log_callback(response, callback, started)
        return response

    return app


def _log_refusal(body: bytes, error: p.CallbackError) -> None:
    """A signed callback that can never apply as sent: someone must look at it.

    It is answered 400 and not recorded, so the processor's retries (CoinsPaid resends for
    about 19 hours) are refused the same way, and a corrected resend, or a fix here followed
    by a resend from the processor's dashboard, still applies it.
    """
    _log.error(
        "payments_callback_refused",
        field=error.field,
        reason=str(error),
        callback=p.callback_identity(body),
    )


def _dispatch(
    ledger: LedgerClient,
    store: CallbackStore,
    settings: Settings,
    callback: p.DepositCallback | p.WithdrawalCallback,
) -> JSONResponse:
    """Runs in the threadpool: the engine client and SQLite both block."""
    if isinstance(callback, p.DepositCallback):
        return _answer(lambda: handle_deposit(ledger, store, settings, callback))
    return _answer(lambda: handle_withdrawal(ledger, store, callback))
