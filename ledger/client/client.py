"""A small typed Python client for platform services (sync and asyncio).

Every command is idempotent, so a call that fails with UNAVAILABLE, DEADLINE_EXCEEDED or
CANCELLED is resent with the same idempotency key, a bounded number of times with jittered
backoff; the engine answers a resend of something it already applied with DUPLICATE and the
original journal id. A RESOURCE_EXHAUSTED that carries the server's RetryInfo (it shed load)
is resent the same way, never sooner than the delay it names; one without RetryInfo (a request
over a fixed bound) is not. Whatever still fails is raised as one of this module's own errors
(`LedgerCallError` and its subclasses, `ledger.client.errors`) with the gRPC error chained, and
every answer is one of its own frozen dataclasses (`ledger.client.results`): no protobuf comes
out. Amounts go in and come out as exact decimal strings in major units; the engine's own
parser (`parse_amount`, with `Currency` and `DEFAULT_CURRENCIES`) is re-exported here for
clients that must check an amount exactly as the engine will before they act on it; it
raises `InvalidArgument` (the engine's), while the server's refusal is `InvalidRequest`.

    with LedgerClient("127.0.0.1:50051", token) as ledger:
        reply = ledger.deposit(idempotency_key="d-1", player_id="p1", currency="EUR",
                               amount="10.50", rail="psp", rail_id="stripe")
        assert reply.outcome == "OK"

The contract these methods speak is in `docs/contract.md`.
"""

import asyncio
import random
import re
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ledger.client import results
from ledger.client.batching import AsyncLane, BatchOptions, LaneCall, ThreadLane
from ledger.client.errors import InternalError as InternalError
from ledger.client.errors import InvalidRequest as InvalidRequest
from ledger.client.errors import LedgerCallError as LedgerCallError
from ledger.client.errors import NotFound as NotFound
from ledger.client.errors import Overloaded as Overloaded
from ledger.client.errors import PermissionDenied as PermissionDenied
from ledger.client.errors import Unauthenticated as Unauthenticated
from ledger.client.errors import Unavailable as Unavailable
from ledger.client.errors import retry_delay_s, status_code, translated
from ledger.client.results import AccountBalance as AccountBalance
from ledger.client.results import Balances as Balances
from ledger.client.results import ClockReply as ClockReply
from ledger.client.results import CurrencyTotals as CurrencyTotals
from ledger.client.results import Entry as Entry
from ledger.client.results import Posting as Posting
from ledger.client.results import Reply as Reply
from ledger.client.results import StoredEvent as StoredEvent
from ledger.client.results import Transaction as Transaction
from ledger.client.results import TransactionPage as TransactionPage
from ledger.client.results import TrialBalance as TrialBalance
from ledger.client.results import WalletBalance as WalletBalance
from ledger.core.errors import InvalidArgument as InvalidArgument
from ledger.core.money import DEFAULT_CURRENCIES as DEFAULT_CURRENCIES
from ledger.core.money import Currency as Currency
from ledger.core.money import default_currency as default_currency
from ledger.core.money import format_amount as format_amount
from ledger.core.money import parse_amount as parse_amount
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_CURRENCIES",
    "AccountBalance",
    "AsyncLedgerClient",
    "Balances",
    "Batch",
    "BatchOptions",
    "Currency",
    "CurrencyTotals",
    "Entry",
    "EventSubscription",
    "InternalError",
    "InvalidArgument",
    "InvalidRequest",
    "LedgerCallError",
    "LedgerClient",
    "NotFound",
    "Overloaded",
    "PartitionedLedgerClient",
    "PermissionDenied",
    "Posting",
    "Reply",
    "StoredEvent",
    "Transaction",
    "TransactionPage",
    "TrialBalance",
    "Unauthenticated",
    "Unavailable",
    "WalletBalance",
    "default_currency",
    "format_amount",
    "parse_amount",
    "partition_of",
]

RETRY_COUNT_MAX = 5  # attempts per call, the first included
TIMEOUT_S = 10.0
# Resends wait a random time up to min(BACKOFF_S_MAX, BACKOFF_S_MIN * 2**attempt), and never
# less than the server's RetryInfo delay.
BACKOFF_S_MIN = 0.05
BACKOFF_S_MAX = 1.0
# A server draining on SIGTERM answers some calls in flight with CANCELLED: like UNAVAILABLE,
# the command may or may not have been stored, and only a resend with the same key finds out.
# A caller cancelling its own call gets asyncio's CancelledError or FutureCancelledError,
# never this status, so no call the caller gave up on is resent.
_RESENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)


def resend_delay_s(error: grpc.RpcError, attempt: int, attempt_count_max: int) -> float | None:
    """How long to wait before resending a call whose attempt (from 1) raised error; None
    when it must not be resent: its status says a resend cannot help, or attempts ran out."""
    if attempt >= attempt_count_max or not is_transient(error):
        return None
    server_delay_s = retry_delay_s(error)
    backoff_s = random.uniform(0, min(BACKOFF_S_MAX, BACKOFF_S_MIN * 2**attempt))
    return max(backoff_s, server_delay_s or 0.0)


def is_transient(error: grpc.RpcError) -> bool:
    """Whether a resend of the same call may succeed: the server was unreachable, slow or
    draining, or shed load and said when to come back."""
    code = status_code(error)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return retry_delay_s(error) is not None
    return code in _RESENT_CODES


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


# Method name -> (request class, converter of the reply into this library's result).
_METHODS = {
    "Deposit": (pb.DepositRequest, results.reply_from),
    "ReverseDeposit": (pb.ReverseDepositRequest, results.reply_from),
    "Bet": (pb.BetRequest, results.reply_from),
    "Win": (pb.WinRequest, results.reply_from),
    "Rollback": (pb.RollbackRequest, results.reply_from),
    "RequestWithdrawal": (pb.RequestWithdrawalRequest, results.reply_from),
    "CompleteWithdrawal": (pb.WithdrawalStepRequest, results.reply_from),
    "CancelWithdrawal": (pb.WithdrawalStepRequest, results.reply_from),
    "FailWithdrawal": (pb.WithdrawalStepRequest, results.reply_from),
    "GrantBonus": (pb.GrantBonusRequest, results.reply_from),
    "ForfeitBonus": (pb.ForfeitBonusRequest, results.reply_from),
    "SetLimits": (pb.SetLimitsRequest, results.reply_from),
    "HoldInSuspense": (pb.HoldInSuspenseRequest, results.reply_from),
    "AttributeSuspense": (pb.AttributeSuspenseRequest, results.reply_from),
    "ReturnSuspense": (pb.ReturnSuspenseRequest, results.reply_from),
    "SubmitBatch": (pb.SubmitBatchRequest, results.replies_from),
    "GetBalance": (pb.GetBalanceRequest, results.wallet_balance_from),
    "GetTransaction": (pb.GetTransactionRequest, results.transaction_from),
    "ListTransactions": (pb.ListTransactionsRequest, results.transaction_page_from),
    "GetAccountBalance": (pb.GetAccountBalanceRequest, results.account_balance_from),
    "GetTrialBalance": (pb.GetTrialBalanceRequest, results.trial_balance_from),
    "GetLogHeads": (pb.GetLogHeadsRequest, results.log_heads_from),
    "AdvanceClock": (pb.AdvanceClockRequest, results.clock_reply_from),
}
_TIMESTAMP_FIELDS = ("occurred_at", "expires_at", "self_excluded_until", "advance_to")
# A command's method name -> its field in a batch's `Command` oneof ("CompleteWithdrawal" ->
# "complete_withdrawal").
_BATCH_FIELDS = {
    method: re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()
    for method, (request_type, _) in _METHODS.items()
    if method
    not in {
        "SubmitBatch",
        "GetBalance",
        "GetTransaction",
        "ListTransactions",
        "GetAccountBalance",
        "GetTrialBalance",
        "GetLogHeads",
        "AdvanceClock",
    }
}
assert set(_BATCH_FIELDS.values()) == set(pb.Command.DESCRIPTOR.fields_by_name)


def build_request(method: str, fields: dict):
    """The request message for method from keyword fields (datetimes become Timestamps)."""
    request_type, _ = _METHODS[method]
    values = {k: v for k, v in fields.items() if v is not None}
    for name in _TIMESTAMP_FIELDS:
        if name in values:
            values[name] = _timestamp(values[name])
    return request_type(**values)


def build_command(method: str, fields: dict) -> pb.Command:
    """The batch item for a command method from its keyword fields."""
    return pb.Command(**{_BATCH_FIELDS[method]: build_request(method, fields)})


def _batch_options(auto_batch: "bool | BatchOptions") -> BatchOptions | None:
    if isinstance(auto_batch, BatchOptions):
        return auto_batch
    return BatchOptions() if auto_batch else None


class _CommandMethods:
    """One method per command, shared by the clients and `Batch`; `_call` does the rest.

    A client's methods return a `Reply` (the asyncio client's, an awaitable of one)."""

    def _call(self, method: str, fields: dict):
        raise NotImplementedError

    def deposit(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        amount: str,
        rail: str,
        rail_id: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("Deposit", locals())

    def reverse_deposit(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        amount: str,
        rail: str,
        rail_id: str,
        deposit_key: str | None = None,
        occurred_at: datetime | None = None,
    ):
        return self._call("ReverseDeposit", locals())

    def bet(
        self,
        *,
        idempotency_key: str,
        provider: str,
        player_id: str,
        currency: str,
        amount: str,
        round_id: str,
        game_category: str | None = None,
        occurred_at: datetime | None = None,
    ):
        return self._call("Bet", locals())

    def win(
        self,
        *,
        idempotency_key: str,
        provider: str,
        player_id: str,
        currency: str,
        amount: str,
        bet_key: str,
        round_closed: bool = False,
        occurred_at: datetime | None = None,
    ):
        return self._call("Win", locals())

    def rollback(
        self,
        *,
        idempotency_key: str,
        provider: str,
        player_id: str,
        currency: str,
        target_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("Rollback", locals())

    def request_withdrawal(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        amount: str,
        rail: str,
        rail_id: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("RequestWithdrawal", locals())

    def complete_withdrawal(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        withdrawal_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("CompleteWithdrawal", locals())

    def cancel_withdrawal(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        withdrawal_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("CancelWithdrawal", locals())

    def fail_withdrawal(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        withdrawal_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("FailWithdrawal", locals())

    def grant_bonus(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        amount: str,
        wagering_multiplier: int,
        max_conversion: str | None = None,
        max_bet: str | None = None,
        expires_at: datetime | None = None,
        occurred_at: datetime | None = None,
    ):
        return self._call("GrantBonus", locals())

    def forfeit_bonus(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("ForfeitBonus", locals())

    def set_limits(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        deposit_limit_24h: str | None = None,
        deposit_limit_7d: str | None = None,
        deposit_limit_30d: str | None = None,
        loss_limit_24h: str | None = None,
        loss_limit_7d: str | None = None,
        loss_limit_30d: str | None = None,
        self_excluded_until: datetime | None = None,
        occurred_at: datetime | None = None,
    ):
        return self._call("SetLimits", locals())

    def hold_in_suspense(
        self,
        *,
        idempotency_key: str,
        currency: str,
        amount: str,
        rail: str,
        rail_id: str,
        reason: str,
        occurred_at: datetime | None = None,
    ):
        """Parks money no player can be found for; the key names the suspense item."""
        return self._call("HoldInSuspense", locals())

    def attribute_suspense(
        self,
        *,
        idempotency_key: str,
        player_id: str,
        currency: str,
        item_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("AttributeSuspense", locals())

    def return_suspense(
        self,
        *,
        idempotency_key: str,
        currency: str,
        item_key: str,
        occurred_at: datetime | None = None,
    ):
        return self._call("ReturnSuspense", locals())


class _Commands(_CommandMethods):
    """The clients' whole surface: the commands, batches and queries."""

    def _lane_call(self, unary) -> LaneCall:
        """What an auto-batching lane needs from this client (its stub, auth, retries)."""
        return LaneCall(
            submit_batch=self.stub.SubmitBatch,
            metadata=self.metadata,
            timeout_s=self.timeout_s,
            retry_count_max=self.retry_count_max,
            resend_delay_s=resend_delay_s,
            is_transient=is_transient,
            unary=unary,
        )

    def submit_batch(self, commands: "Batch | Sequence[pb.Command]"):
        """Many commands, each applied on its own; one `Reply` each, in order.

        Args:
            commands: a `Batch`, or `ledger.v1` Command messages for callers that have them.
        """
        return self._call("SubmitBatch", {"commands": batch_commands(commands)})

    def get_balance(self, *, player_id: str, currency: str):
        """The wallet's `WalletBalance` (balances, wallet_version); version 0: no wallet yet."""
        return self._call("GetBalance", locals())

    def get_transaction(self, *, idempotency_key: str, provider: str | None = None):
        """The `Transaction` recorded under a key (a Bet, Win or Rollback key: its provider's);
        `NotFound` if none is."""
        return self._call("GetTransaction", locals())

    def list_transactions(
        self,
        *,
        player_id: str,
        currency: str,
        page_size: int | None = None,
        page_token: str | None = None,
    ):
        """One `TransactionPage` of the wallet's statement, oldest first."""
        return self._call("ListTransactions", locals())

    def get_account_balance(self, *, account: str):
        """Any account's `AccountBalance` from the read models, with the position it is as of."""
        return self._call("GetAccountBalance", locals())

    def get_trial_balance(self):
        """The `TrialBalance`: debits and credits per currency, from the read models."""
        return self._call("GetTrialBalance", {})

    def get_log_heads(self):
        """Each log partition's newest position, by partition: as many as the store has
        partitions (one for SQLite and the single PostgreSQL log)."""
        return self._call("GetLogHeads", {})

    def advance_clock(self, *, advance_to: datetime | None = None):
        """A test store's clock moved forward to advance_to (admin only), or only read
        without it: a ClockReply. A target at or before the ledger's time moves nothing, so
        resends are safe; to move by a duration, read the time first and add to it."""
        return self._call("AdvanceClock", locals())


class Batch(_CommandMethods):
    """Commands for one `submit_batch`, added with the same methods as a client's commands;
    each returns its position, which is its reply's position in the answer.

        batch = Batch()
        batch.deposit(idempotency_key="d-1", player_id="p1", currency="EUR", amount="5",
                      rail="psp", rail_id="stripe")
        replies = ledger.submit_batch(batch)
    """

    def __init__(self) -> None:
        self.commands: list[pb.Command] = []

    def _call(self, method: str, fields: dict) -> int:
        fields.pop("self", None)
        self.commands.append(build_command(method, fields))
        return len(self.commands) - 1

    def __len__(self) -> int:
        return len(self.commands)


def batch_commands(commands: "Batch | Sequence[pb.Command]") -> list[pb.Command]:
    return list(commands.commands if isinstance(commands, Batch) else commands)


class EventSubscription:
    """Stored events (`StoredEvent`) after a position, then new ones live, until `cancel()`.

    Iterate it (from any one thread); a subscription is never resent: after an error,
    subscribe again after the last position seen."""

    def __init__(self, call) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> "EventSubscription":
        return self

    def __next__(self) -> StoredEvent:
        try:
            return results.stored_event_from(next(self._call))
        except grpc.RpcError as error:
            if self._cancelled and status_code(error) is grpc.StatusCode.CANCELLED:
                raise StopIteration from None  # the caller ended it: not an error
            raise translated(error, attempts=1) from error

    def cancel(self) -> None:
        """Ends the subscription; an iteration in progress stops without an error."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> "EventSubscription":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


def _channel_credentials(root_certificates, private_key, certificate_chain):
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=private_key,
        certificate_chain=certificate_chain,
    )


class LedgerClient(_Commands):
    """Blocking client. TLS when root_certificates is given; mutual TLS with a client key.

    `channel_options` are gRPC channel arguments (`grpc.max_reconnect_backoff_ms`, ...).
    With auto_batch (True, or `BatchOptions`), commands that threads send at the same time go
    out together as SubmitBatch frames (`ledger.client.batching`); each call still returns
    or raises exactly what it would alone."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout_s: float = TIMEOUT_S,
        retry_count_max: int = RETRY_COUNT_MAX,
        channel_options: Sequence[tuple[str, int | str]] = (),
        auto_batch: bool | BatchOptions = False,
    ):
        arguments = list(channel_options)
        if root_certificates is None:
            self.channel = grpc.insecure_channel(target, arguments)
        else:
            credentials = _channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.secure_channel(target, credentials, arguments)
        self.stub = pb_grpc.LedgerServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.timeout_s = timeout_s
        self.retry_count_max = retry_count_max
        batching = _batch_options(auto_batch)
        self.lane = ThreadLane(self._lane_call(self._call_unary), batching) if batching else None

    def _call(self, method: str, fields: dict):
        fields.pop("self", None)
        if self.lane is not None and method in _BATCH_FIELDS:
            command = build_command(method, fields)
            return self.lane.submit(method, command, fields.get("player_id") or "")
        return self._call_unary(method, build_request(method, fields))

    def _call_unary(self, method: str, request):
        call = getattr(self.stub, method)
        attempt = 1
        while True:
            try:
                reply = call(request, metadata=self.metadata, timeout=self.timeout_s)
            except grpc.RpcError as error:
                delay_s = resend_delay_s(error, attempt, self.retry_count_max)
                if delay_s is None:
                    raise translated(error, attempt) from error
                time.sleep(delay_s)
                attempt += 1
                continue
            return _METHODS[method][1](reply)

    def subscribe_events(self, *, after_position: int = 0, partition: int = 0) -> EventSubscription:
        """A partition's stored events after a position, then new ones live; `cancel()` it
        to stop."""
        request = pb.SubscribeEventsRequest(after_position=after_position, partition=partition)
        return EventSubscription(self.stub.SubscribeEvents(request, metadata=self.metadata))

    def close(self) -> None:
        if self.lane is not None:
            self.lane.close()
        self.channel.close()

    def __enter__(self) -> "LedgerClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncLedgerClient(_Commands):
    """asyncio client: the same methods, each returning an awaitable; `channel_options` and
    auto_batch as for `LedgerClient`, auto_batch coalescing the commands of concurrent tasks
    (make and use it inside one running loop: grpc.aio binds a channel to it)."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout_s: float = TIMEOUT_S,
        retry_count_max: int = RETRY_COUNT_MAX,
        channel_options: Sequence[tuple[str, int | str]] = (),
        auto_batch: bool | BatchOptions = False,
    ):
        arguments = list(channel_options)
        if root_certificates is None:
            self.channel = grpc.aio.insecure_channel(target, arguments)
        else:
            credentials = _channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.aio.secure_channel(target, credentials, arguments)
        self.stub = pb_grpc.LedgerServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.timeout_s = timeout_s
        self.retry_count_max = retry_count_max
        options = _batch_options(auto_batch)
        self.lane = AsyncLane(self._lane_call(self._call_async), options) if options else None

    async def _call_async(self, method: str, request):
        call = getattr(self.stub, method)
        attempt = 1
        while True:
            try:
                reply = await call(request, metadata=self.metadata, timeout=self.timeout_s)
            except grpc.RpcError as error:
                delay_s = resend_delay_s(error, attempt, self.retry_count_max)
                if delay_s is None:
                    raise translated(error, attempt) from error
                await asyncio.sleep(delay_s)
                attempt += 1
                continue
            return _METHODS[method][1](reply)

    def _call(self, method: str, fields: dict):
        fields.pop("self", None)
        if self.lane is not None and method in _BATCH_FIELDS:
            command = build_command(method, fields)
            return self.lane.submit(method, command, fields.get("player_id") or "")
        return self._call_async(method, build_request(method, fields))

    async def subscribe_events(
        self, *, after_position: int = 0, partition: int = 0
    ) -> AsyncIterator[StoredEvent]:
        """A partition's stored events after a position, then new ones live; leave the loop
        to stop."""
        request = pb.SubscribeEventsRequest(after_position=after_position, partition=partition)
        call = self.stub.SubscribeEvents(request, metadata=self.metadata)
        try:
            async for message in call:
                yield results.stored_event_from(message)
        except grpc.RpcError as error:
            raise translated(error, attempts=1) from error
        finally:
            call.cancel()  # a consumer that stopped early ends the stream on the server too

    async def close(self) -> None:
        if self.lane is not None:
            await self.lane.close()
        await self.channel.close()

    async def __aenter__(self) -> "AsyncLedgerClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def partition_of(player_id: str, partitions: int) -> int:
    """The engine process that owns a player when N processes share one database.

    Only a performance convention (each wallet's cache and group commits stay in one
    process): any process serves any wallet correctly, so a mis-routed call is slower, never
    wrong.
    """
    assert partitions > 0
    return zlib.crc32(player_id.encode("utf-8")) % partitions


class PartitionedLedgerClient(_Commands):
    """A blocking client per engine process; each call goes to the process owning its player.

    Calls naming no player (suspense holds and returns, transaction lookups, read models) go to
    the first process. `submit_batch` is split by owner: each part is one transaction in its
    process and the results come back in the request's order, but the parts are not one
    transaction together. If a part fails, resend the whole batch: idempotency answers the
    parts already applied with DUPLICATE.
    """

    def __init__(self, targets: Sequence[str], token: str, **options) -> None:
        if not targets:
            raise ValueError("targets: at least one engine process is needed")
        self.clients = [LedgerClient(target, token, **options) for target in targets]

    def owner(self, player_id: str) -> LedgerClient:
        return self.clients[self._owner_index(player_id)]

    def _owner_index(self, player_id: str) -> int:
        return partition_of(player_id, len(self.clients)) if player_id else 0

    def _call(self, method: str, fields: dict):
        fields.pop("self", None)
        if method == "SubmitBatch":
            return self._submit_batch(list(fields["commands"]))
        return self.owner(fields.get("player_id") or "")._call(method, fields)

    def subscribe_events(self, *, after_position: int = 0) -> EventSubscription:
        """The log is one, whichever process serves it: the first one does."""
        return self.clients[0].subscribe_events(after_position=after_position)

    def _submit_batch(self, commands: list[pb.Command]) -> list[Reply]:
        parts: dict[int, list[int]] = {}
        for index, command in enumerate(commands):
            parts.setdefault(self._owner_index(_batch_player(command)), []).append(index)
        answers: list = [None] * len(commands)
        for owner, indices in sorted(parts.items()):
            part = [commands[index] for index in indices]
            replies = self.clients[owner]._call("SubmitBatch", {"commands": part})
            for index, reply in zip(indices, replies, strict=True):
                answers[index] = reply
        return answers

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> "PartitionedLedgerClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _batch_player(command: pb.Command) -> str:
    which = command.WhichOneof("command")
    return getattr(getattr(command, which), "player_id", "") if which else ""
