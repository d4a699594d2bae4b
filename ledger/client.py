"""A small typed Python client for platform services (sync and asyncio).

Every command is idempotent, so a call that fails with UNAVAILABLE, DEADLINE_EXCEEDED or
CANCELLED is resent with the same idempotency key, a bounded number of times with jittered
backoff; the engine answers a resend of something it already applied with DUPLICATE and the
original journal id. Amounts go in and come out as exact decimal strings in major units; the
engine's own parser (`parse_amount`, with `Currency` and `DEFAULT_CURRENCIES`) is re-exported
here for clients that must check an amount exactly as the engine will before they act on it.

    with LedgerClient("127.0.0.1:50051", token) as ledger:
        reply = ledger.deposit(idempotency_key="d-1", player_id="p1", currency="EUR",
                               amount="10.50", rail="psp", rail_id="stripe")
        assert reply.outcome == "OK"
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tenacity import (
    AsyncRetrying, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential,
)  # fmt: skip

from ledger.core.errors import InvalidArgument as InvalidArgument
from ledger.core.money import DEFAULT_CURRENCIES as DEFAULT_CURRENCIES
from ledger.core.money import Currency as Currency
from ledger.core.money import default_currency as default_currency
from ledger.core.money import format_amount as format_amount
from ledger.core.money import parse_amount as parse_amount
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

RETRY_COUNT_MAX = 5
TIMEOUT_S = 10.0
# A server draining on SIGTERM answers some calls in flight with CANCELLED: like UNAVAILABLE,
# the command may or may not have been stored, and only a resend with the same key finds out.
# A caller cancelling its own call gets asyncio's CancelledError or FutureCancelledError,
# never this status, so no call the caller gave up on is resent.
_RETRIED_CODES = (
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
)  # fmt: skip


@dataclass(frozen=True)
class Balances:
    cash: str
    bonus: str
    held: str


@dataclass(frozen=True)
class Reply:
    """A command's answer: `outcome` is the business outcome's name ("OK", "DUPLICATE", ...)."""

    outcome: str
    original_outcome: str
    journal_id: str
    balances: Balances
    balances_after: Balances
    wallet_version: int


def _balances(message: pb.Balances) -> Balances:
    return Balances(cash=message.cash, bonus=message.bonus, held=message.held)


def reply_from(message: pb.CommandResponse) -> Reply:
    return Reply(
        outcome=pb.Outcome.Name(message.outcome).removeprefix("OUTCOME_"),
        original_outcome=pb.Outcome.Name(message.original_outcome).removeprefix("OUTCOME_"),
        journal_id=message.journal_id,
        balances=_balances(message.balances),
        balances_after=_balances(message.balances_after),
        wallet_version=message.wallet_version,
    )


@dataclass(frozen=True)
class ClockReply:
    """An AdvanceClock answer: the ledger's time after the call, and whether it moved it."""

    ledger_time: datetime
    advanced: bool


def clock_reply_from(message: pb.AdvanceClockResponse) -> ClockReply:
    return ClockReply(ledger_time=message.ledger_time.ToDatetime(tzinfo=UTC),
                      advanced=message.advanced)  # fmt: skip


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _is_retried(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() in _RETRIED_CODES


# Method name -> (request class, reply converter).
_METHODS = {
    "Deposit": (pb.DepositRequest, reply_from),
    "ReverseDeposit": (pb.ReverseDepositRequest, reply_from),
    "Bet": (pb.BetRequest, reply_from),
    "Win": (pb.WinRequest, reply_from),
    "Rollback": (pb.RollbackRequest, reply_from),
    "RequestWithdrawal": (pb.RequestWithdrawalRequest, reply_from),
    "CompleteWithdrawal": (pb.WithdrawalStepRequest, reply_from),
    "CancelWithdrawal": (pb.WithdrawalStepRequest, reply_from),
    "FailWithdrawal": (pb.WithdrawalStepRequest, reply_from),
    "GrantBonus": (pb.GrantBonusRequest, reply_from),
    "ForfeitBonus": (pb.ForfeitBonusRequest, reply_from),
    "SetLimits": (pb.SetLimitsRequest, reply_from),
    "HoldInSuspense": (pb.HoldInSuspenseRequest, reply_from),
    "AttributeSuspense": (pb.AttributeSuspenseRequest, reply_from),
    "ReturnSuspense": (pb.ReturnSuspenseRequest, reply_from),
    "SubmitBatch": (pb.SubmitBatchRequest, lambda m: [reply_from(r) for r in m.results]),
    "GetBalance": (pb.GetBalanceRequest, lambda m: (_balances(m.balances), m.wallet_version)),
    "GetTransaction": (pb.GetTransactionRequest, lambda m: m),
    "ListTransactions": (pb.ListTransactionsRequest, lambda m: m),
    "GetAccountBalance": (pb.GetAccountBalanceRequest, lambda m: m),
    "GetTrialBalance": (pb.GetTrialBalanceRequest, lambda m: m),
    "AdvanceClock": (pb.AdvanceClockRequest, clock_reply_from),
}
_TIMESTAMP_FIELDS = ("occurred_at", "expires_at", "self_excluded_until", "advance_to")


def build_request(method: str, fields: dict):
    """The request message for method from keyword fields (datetimes become Timestamps)."""
    request_type, _ = _METHODS[method]
    values = {k: v for k, v in fields.items() if v is not None}
    for name in _TIMESTAMP_FIELDS:
        if name in values:
            values[name] = _timestamp(values[name])
    return request_type(**values)


class _Commands:
    """The typed surface, shared by both clients; `_call` does the transport."""

    def _call(self, method: str, fields: dict):
        raise NotImplementedError

    def deposit(self, *, idempotency_key: str, player_id: str, currency: str, amount: str,
                rail: str, rail_id: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("Deposit", locals())

    def reverse_deposit(self, *, idempotency_key: str, player_id: str, currency: str,
                        amount: str, rail: str, rail_id: str, deposit_key: str | None = None,
                        occurred_at: datetime | None = None):  # fmt: skip
        return self._call("ReverseDeposit", locals())

    def bet(self, *, idempotency_key: str, provider: str, player_id: str, currency: str,
            amount: str, round_id: str, game_category: str | None = None,
            occurred_at: datetime | None = None):  # fmt: skip
        return self._call("Bet", locals())

    def win(self, *, idempotency_key: str, provider: str, player_id: str, currency: str,
            amount: str, bet_key: str, round_closed: bool = False,
            occurred_at: datetime | None = None):  # fmt: skip
        return self._call("Win", locals())

    def rollback(self, *, idempotency_key: str, provider: str, player_id: str, currency: str,
                 target_key: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("Rollback", locals())

    def request_withdrawal(self, *, idempotency_key: str, player_id: str, currency: str,
                           amount: str, rail: str, rail_id: str,
                           occurred_at: datetime | None = None):  # fmt: skip
        return self._call("RequestWithdrawal", locals())

    def complete_withdrawal(self, *, idempotency_key: str, player_id: str, currency: str,
                            withdrawal_key: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("CompleteWithdrawal", locals())

    def cancel_withdrawal(self, *, idempotency_key: str, player_id: str, currency: str,
                          withdrawal_key: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("CancelWithdrawal", locals())

    def fail_withdrawal(self, *, idempotency_key: str, player_id: str, currency: str,
                        withdrawal_key: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("FailWithdrawal", locals())

    def grant_bonus(self, *, idempotency_key: str, player_id: str, currency: str, amount: str,
                    wagering_multiplier: int, max_conversion: str | None = None,
                    max_bet: str | None = None, expires_at: datetime | None = None,
                    occurred_at: datetime | None = None):  # fmt: skip
        return self._call("GrantBonus", locals())

    def forfeit_bonus(self, *, idempotency_key: str, player_id: str, currency: str,
                      occurred_at: datetime | None = None):  # fmt: skip
        return self._call("ForfeitBonus", locals())

    def set_limits(self, *, idempotency_key: str, player_id: str, currency: str,
                   deposit_limit_24h: str | None = None, deposit_limit_7d: str | None = None,
                   deposit_limit_30d: str | None = None, loss_limit_24h: str | None = None,
                   loss_limit_7d: str | None = None, loss_limit_30d: str | None = None,
                   self_excluded_until: datetime | None = None,
                   occurred_at: datetime | None = None):  # fmt: skip
        return self._call("SetLimits", locals())

    def hold_in_suspense(self, *, idempotency_key: str, currency: str, amount: str, rail: str,
                         rail_id: str, reason: str,
                         occurred_at: datetime | None = None):  # fmt: skip
        """Parks money no player can be found for; the key names the suspense item."""
        return self._call("HoldInSuspense", locals())

    def attribute_suspense(self, *, idempotency_key: str, player_id: str, currency: str,
                           item_key: str, occurred_at: datetime | None = None):  # fmt: skip
        return self._call("AttributeSuspense", locals())

    def return_suspense(self, *, idempotency_key: str, currency: str, item_key: str,
                        occurred_at: datetime | None = None):  # fmt: skip
        return self._call("ReturnSuspense", locals())

    def submit_batch(self, commands: list[pb.Command]):
        """Many commands, each applied on its own; one Reply each, in order."""
        return self._call("SubmitBatch", {"commands": commands})

    def get_balance(self, *, player_id: str, currency: str):
        """(Balances, wallet_version)."""
        return self._call("GetBalance", locals())

    def get_transaction(self, *, idempotency_key: str, provider: str | None = None):
        return self._call("GetTransaction", locals())

    def list_transactions(self, *, player_id: str, currency: str, page_size: int | None = None,
                          page_token: str | None = None):  # fmt: skip
        return self._call("ListTransactions", locals())

    def get_account_balance(self, *, account: str):
        """Any account's balance from the read models, with the position it is as of."""
        return self._call("GetAccountBalance", locals())

    def get_trial_balance(self):
        return self._call("GetTrialBalance", {})

    def advance_clock(self, *, advance_to: datetime | None = None):
        """A test store's clock moved forward to advance_to (admin only), or only read
        without it: a ClockReply. A target at or before the ledger's time moves nothing, so
        resends are safe; to move by a duration, read the time first and add to it."""
        return self._call("AdvanceClock", locals())


def _channel_credentials(root_certificates, private_key, certificate_chain):
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates, private_key=private_key,
        certificate_chain=certificate_chain,
    )  # fmt: skip


class LedgerClient(_Commands):
    """Blocking client. TLS when root_certificates is given; mutual TLS with a client key."""

    def __init__(self, target: str, token: str, *, root_certificates: bytes | None = None,
                 private_key: bytes | None = None, certificate_chain: bytes | None = None,
                 timeout_s: float = TIMEOUT_S, retry_count_max: int = RETRY_COUNT_MAX):  # fmt: skip
        if root_certificates is None:
            self.channel = grpc.insecure_channel(target)
        else:
            credentials = _channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.secure_channel(target, credentials)
        self.stub = pb_grpc.LedgerServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.timeout_s = timeout_s
        self.retrying = Retrying(
            stop=stop_after_attempt(retry_count_max), wait=wait_random_exponential(0.05, 1.0),
            retry=retry_if_exception(_is_retried), reraise=True,
        )  # fmt: skip

    def _call(self, method: str, fields: dict):
        fields.pop("self", None)
        request = build_request(method, fields)
        call = getattr(self.stub, method)
        reply = self.retrying(call, request, metadata=self.metadata, timeout=self.timeout_s)
        return _METHODS[method][1](reply)

    def subscribe_events(self, *, after_position: int = 0):
        """Stored events after a position, then new ones live; cancel() the iterator to stop."""
        request = pb.SubscribeEventsRequest(after_position=after_position)
        return self.stub.SubscribeEvents(request, metadata=self.metadata)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "LedgerClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncLedgerClient(_Commands):
    """asyncio client: the same methods, each returning an awaitable."""

    def __init__(self, target: str, token: str, *, root_certificates: bytes | None = None,
                 private_key: bytes | None = None, certificate_chain: bytes | None = None,
                 timeout_s: float = TIMEOUT_S, retry_count_max: int = RETRY_COUNT_MAX):  # fmt: skip
        if root_certificates is None:
            self.channel = grpc.aio.insecure_channel(target)
        else:
            credentials = _channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.aio.secure_channel(target, credentials)
        self.stub = pb_grpc.LedgerServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.timeout_s = timeout_s
        self.retry_count_max = retry_count_max

    async def _call_async(self, method: str, request):
        call = getattr(self.stub, method)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.retry_count_max), wait=wait_random_exponential(0.05, 1.0),
            retry=retry_if_exception(_is_retried), reraise=True,
        ):  # fmt: skip
            with attempt:
                reply = await call(request, metadata=self.metadata, timeout=self.timeout_s)
        return _METHODS[method][1](reply)

    def _call(self, method: str, fields: dict):
        fields.pop("self", None)
        return self._call_async(method, build_request(method, fields))

    async def close(self) -> None:
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

    def _submit_batch(self, commands: list[pb.Command]) -> list:
        parts: dict[int, list[int]] = {}
        for index, command in enumerate(commands):
            parts.setdefault(self._owner_index(_batch_player(command)), []).append(index)
        results: list = [None] * len(commands)
        for owner, indices in sorted(parts.items()):
            part = [commands[index] for index in indices]
            replies = self.clients[owner]._call("SubmitBatch", {"commands": part})
            for index, reply in zip(indices, replies, strict=True):
                results[index] = reply
        return results

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
