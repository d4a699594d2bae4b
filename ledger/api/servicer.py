"""The LedgerService servicer: thin. Each call authenticates, authorizes, converts the
request into engine types, lets the group committer (or a query) do the work, and converts
back. Errors become status codes in one place (`ledger.api.status`), and every call leaves
one canonical log line, a span and metrics (`ledger.api.telemetry`).
"""

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

import grpc
import structlog

from ledger.api import convert
from ledger.api.auth import Authenticator, Principal, authorize
from ledger.api.group_commit import GroupCommitter
from ledger.api.handlers import refuse_undecodable
from ledger.api.status import BoundExceeded, NotFound, Unavailable, cancelled_status, status_for
from ledger.api.telemetry import CallRecord, Telemetry
from ledger.core import limits
from ledger.core.chain import digest
from ledger.core.commands import Command
from ledger.core.errors import InvalidArgument
from ledger.core.money import Currency, CurrencyRegistry
from ledger.core.outcomes import Outcome
from ledger.core.state import ZERO_BALANCES, Balances
from ledger.core.validation import (
    validate,
    validate_account_reference,
    validate_transaction_reference,
    validate_wallet_reference,
)
from ledger.event_log import LogRecord, log_pages
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from projections.stores import ProjectionStore

LIST_PAGE_SIZE_DEFAULT = 100
STREAM_POLL_S = 0.1
_log = structlog.get_logger("ledger.api")

Work = Callable[[Principal, CallRecord], Awaitable[object]]


class LedgerServicer(pb_grpc.LedgerServiceServicer):
    def __init__(
        self,
        ledger: Ledger,
        committer: GroupCommitter,
        authenticator: Authenticator,
        telemetry: Telemetry,
        executor: Executor,
        projection: ProjectionStore | None = None,
        store_reachable: Callable[[], bool] = lambda: True,
    ) -> None:
        self.ledger = ledger
        self.committer = committer
        self.authenticator = authenticator
        self.telemetry = telemetry
        self.executor = executor
        self.projection = projection
        self.store_reachable = store_reachable  # the health probe's last finding

    async def _handle(self, method: str, request, context, work: Work):
        metadata = context.invocation_metadata()
        with self.telemetry.call(method, metadata) as record:
            try:
                principal = self.authenticator.authenticate(_authorization(metadata))
                # After authentication: an anonymous caller is told only that it is one.
                refuse_undecodable(request)
                return await work(principal, record)
            except asyncio.CancelledError:
                # gRPC cancels the handler when the client cancels or its deadline passes;
                # the call did not succeed, and the log line and metrics must not say OK.
                record.status = cancelled_status(context.time_remaining()).name
                raise
            except Exception as error:
                status = status_for(error)
                record.status = status.code.name
                if status.code is grpc.StatusCode.INTERNAL:
                    _log.exception("internal error", method=method)
                await context.abort(status.code, status.message, status.trailing_metadata())

    def _command(
        self, method: str, request, principal: Principal, authorized: set[tuple]
    ) -> Command:
        """Authorizes, converts and validates one command request of a batch. authorized
        holds the (method, provider) pairs already allowed in this batch: the principal's
        answer depends on nothing else, so each pair is asked once."""
        scope = (method, _provider(request, principal))
        if scope not in authorized:
            authorize(principal, *scope)
            authorized.add(scope)
        return self._converted(method, request)

    def _converted(self, method: str, request) -> Command:
        command = convert.command_from_request(method, request, self.ledger.rules.currencies)
        validate(command, self.ledger.rules)
        return command

    async def _unary_command(self, method: str, request, context) -> pb.CommandResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.CommandResponse:
            # Authorized first: a call that can never succeed is not told to retry later.
            authorize(principal, method, _provider(request, principal))
            self.committer.check_room(1)
            command = self._converted(method, request)
            [result] = await self.committer.submit([command])
            record.outcome = result.outcome.value
            currency = self.ledger.rules.currencies.get(command.currency)
            return convert.command_response(result, currency)

        return await self._handle(method, request, context, work)

    async def SubmitBatch(self, request, context) -> pb.SubmitBatchResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.SubmitBatchResponse:
            authorize(principal, "SubmitBatch", principal.provider)
            commands = self._batch_commands(request, principal)
            results = await self.committer.submit(commands)
            record.outcome = f"{len(results)} results"
            currencies = _Currencies(self.ledger.rules.currencies)
            return pb.SubmitBatchResponse(
                results=[
                    convert.command_response(result, currencies[command.currency])
                    for command, result in zip(commands, results, strict=True)
                ]
            )

        return await self._handle("SubmitBatch", request, context, work)

    def _batch_commands(self, request, principal: Principal) -> list[Command]:
        if not request.commands:
            raise InvalidArgument("commands", "must hold at least one command")
        if len(request.commands) > limits.batch_size_max:
            raise BoundExceeded(f"a batch holds at most {limits.batch_size_max} commands")
        # Before any conversion, so shedding load costs little; an item for another provider
        # is then refused (PERMISSION_DENIED) only once the queue has room again.
        self.committer.check_room(len(request.commands))
        commands: list[Command] = []
        authorized: set[tuple] = set()
        for index, item in enumerate(request.commands):
            method, inner = convert.batch_item(item, index)
            try:
                commands.append(self._command(method, inner, principal, authorized))
            except InvalidArgument as error:
                oneof = item.WhichOneof("command")
                raise convert.prefixed(error, f"commands[{index}].{oneof}") from None
        return commands

    async def GetBalance(self, request, context) -> pb.GetBalanceResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.GetBalanceResponse:
            authorize(principal, "GetBalance", principal.provider)
            validate_wallet_reference(request.player_id, request.currency, self.ledger.rules)
            state = await self._read(self.ledger.wallet, request.player_id, request.currency)
            currency = self.ledger.rules.currencies.get(request.currency)
            balances = state.balances if state is not None else ZERO_BALANCES
            return pb.GetBalanceResponse(
                balances=convert.balances_message(balances, currency),
                wallet_version=state.version if state is not None else 0,
            )

        return await self._handle("GetBalance", request, context, work)

    async def GetTransaction(self, request, context) -> pb.GetTransactionResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.GetTransactionResponse:
            # No provider named means the client scope, which no game provider may read.
            authorize(principal, "GetTransaction", request.provider or None)
            validate_transaction_reference(request.idempotency_key, request.provider)
            scope = f"provider:{request.provider}" if request.provider else "client"
            found = await self._read(self.ledger.transaction, scope, request.idempotency_key)
            if found is None:
                raise NotFound(f"no command recorded under {request.idempotency_key!r}")
            return self._transaction_response(*found)

        return await self._handle("GetTransaction", request, context, work)

    def _transaction_response(self, record, events) -> pb.GetTransactionResponse:
        currency = self.ledger.rules.currencies.get(record.currency)
        after = Balances(record.cash, record.bonus, record.held)
        return pb.GetTransactionResponse(
            command_type=record.command_type,
            outcome=convert.outcome_value(Outcome(record.outcome)),
            journal_id=str(record.journal_id or ""),
            player_id=record.player_id,
            currency=record.currency,
            balances_after=convert.balances_message(after, currency),
            recorded_at=convert.timestamp(record.recorded_at),
            entries=[convert.entry_message(event, currency) for event in events],
        )

    async def ListTransactions(self, request, context) -> pb.ListTransactionsResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.ListTransactionsResponse:
            authorize(principal, "ListTransactions", principal.provider)
            validate_wallet_reference(request.player_id, request.currency, self.ledger.rules)
            page_size, after = _page(request)
            wallet = wallet_id(request.player_id, request.currency)
            events = await self._read(
                lambda: self.ledger.wallet_events(wallet, after_version=after, limit=page_size)
            )
            currency = self.ledger.rules.currencies.get(request.currency)
            token = str(events[-1].originator_version) if len(events) == page_size else ""
            return pb.ListTransactionsResponse(
                entries=[convert.entry_message(event, currency) for event in events],
                next_page_token=token,
            )

        return await self._handle("ListTransactions", request, context, work)

    async def GetAccountBalance(self, request, context) -> pb.GetAccountBalanceResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.GetAccountBalanceResponse:
            authorize(principal, "GetAccountBalance", principal.provider)
            currency = validate_account_reference(request.account, self.ledger.rules)
            projection = self._projection()
            position = await self._read(projection.position)
            balance = await self._read(projection.balance_of, request.account)
            return pb.GetAccountBalanceResponse(
                account=request.account,
                currency=currency.code,
                balance=convert.format_amount(balance, currency),
                as_of_position=position,
            )

        return await self._handle("GetAccountBalance", request, context, work)

    async def GetTrialBalance(self, request, context) -> pb.GetTrialBalanceResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.GetTrialBalanceResponse:
            authorize(principal, "GetTrialBalance", principal.provider)
            projection = self._projection()
            position = await self._read(projection.position)
            totals = await self._read(projection.trial_balance)
            registry = self.ledger.rules.currencies
            return pb.GetTrialBalanceResponse(
                currencies=[
                    pb.CurrencyTotals(
                        currency=code,
                        balanced=debits == credits,
                        debits=convert.format_amount(debits, registry.get(code)),
                        credits=convert.format_amount(credits, registry.get(code)),
                    )
                    for code, (debits, credits) in sorted(totals.items())
                ],
                as_of_position=position,
            )

        return await self._handle("GetTrialBalance", request, context, work)

    async def SubscribeEvents(self, request, context) -> None:
        """Streams stored events after a position, then follows new ones until cancelled."""

        async def work(principal: Principal, record: CallRecord) -> None:
            authorize(principal, "SubscribeEvents", principal.provider)
            start = _subscription_start(request, self.ledger.log.partitions)
            await self._stream_events(*start, context, record)

        await self._handle("SubscribeEvents", request, context, work)

    async def GetLogHeads(self, request, context) -> pb.GetLogHeadsResponse:
        async def work(principal: Principal, record: CallRecord) -> pb.GetLogHeadsResponse:
            authorize(principal, "GetLogHeads", principal.provider)
            return pb.GetLogHeadsResponse(heads=await self._read(self.ledger.log.heads))

        return await self._handle("GetLogHeads", request, context, work)

    async def AdvanceClock(self, request, context) -> pb.AdvanceClockResponse:
        """Moves a test store's clock forward (or reads it); UNIMPLEMENTED on a production one."""

        async def work(principal: Principal, record: CallRecord) -> pb.AdvanceClockResponse:
            authorize(principal, "AdvanceClock")
            target = convert.to_datetime(request, "advance_to")
            # A store write, not a read, but as blocking: it goes to the executor the same way.
            reading = await self._read(self.ledger.advance_clock, target)
            record.outcome = "advanced" if reading.advanced else "unchanged"
            return pb.AdvanceClockResponse(
                ledger_time=convert.timestamp(reading.ledger_time), advanced=reading.advanced
            )

        return await self._handle("AdvanceClock", request, context, work)

    async def _stream_events(
        self, position: int, partition: int, context, record: CallRecord
    ) -> None:
        """Writes every event of a partition after position, then each new one, until the
        call ends."""
        record.fields["events"] = 0
        while True:
            # Each page is read on the executor: the generator is resumed there, never here.
            pages = log_pages(self.ledger.log, position, partition=partition)
            while page := await self._read(next, pages, None):
                for log_record in page:
                    await context.write(self._stored_event_message(log_record))
                    record.fields["events"] += 1  # per event: a cancelled call ends mid-page
                position = page[-1].position
            await asyncio.sleep(STREAM_POLL_S)

    def _stored_event_message(self, record: LogRecord) -> pb.StoredEventMessage:
        payload = self.ledger.log.plaintext(record)
        return pb.StoredEventMessage(
            position=record.position,
            stream_id=str(record.stream_id),
            version=record.version,
            event_type=record.topic.partition("@")[0],
            payload=payload,
            digest=digest(payload),
            partition=record.partition,
        )

    def _projection(self) -> ProjectionStore:
        if self.projection is None:
            raise Unavailable("this server keeps no projections (started with --no-projections)")
        return self.projection

    async def _read(self, function, *args):
        """Runs a blocking store read on the executor, off the event loop, unless the health
        probe finds the store unreachable: then the call fails at once, retryable, rather
        than after the store layer's own retries (up to a minute while the pool waits for
        connections that cannot come)."""
        if not self.store_reachable():
            raise Unavailable("the store is unreachable; retry later")
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


def _install_command_methods() -> None:
    """One unary method per command of the contract, all through `_unary_command`."""
    for method in convert.COMMAND_METHODS:

        async def handler(self, request, context, method=method):
            return await self._unary_command(method, request, context)

        handler.__name__ = method
        setattr(LedgerServicer, method, handler)


_install_command_methods()


class _Currencies(dict):
    """A batch's currencies by code, each looked up in the registry once: its commands were
    validated, so every code is known."""

    def __init__(self, registry: CurrencyRegistry) -> None:
        super().__init__()
        self.registry = registry

    def __missing__(self, code: str) -> Currency:
        currency = self[code] = self.registry.get(code)
        return currency


def _authorization(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value
    return None


def _provider(request, principal: Principal) -> str | None:
    """The provider a request acts for: its own field, or the caller's for other requests."""
    provider = getattr(request, "provider", None)
    return provider if provider is not None else principal.provider


def _page(request) -> tuple[int, int]:
    page_size = request.page_size or LIST_PAGE_SIZE_DEFAULT
    if page_size > limits.page_size_max:
        raise InvalidArgument("page_size", f"must be at most {limits.page_size_max}")
    if not request.page_token:
        return page_size, 0
    # isdigit alone admits other scripts' digits, and superscripts that int() refuses.
    token = request.page_token
    if not (token.isascii() and token.isdigit()) or len(token) > 18:
        raise InvalidArgument("page_token", "is not a token this service issued")
    return page_size, int(token)


def _subscription_start(request, partitions: int) -> tuple[int, int]:
    """The position to stream after, and the partition; one past the log's 64-bit ids can
    never be reached."""
    if request.after_position >= limits.event_position_max:
        raise InvalidArgument("after_position", f"must be below {limits.event_position_max}")
    if request.partition >= partitions:
        raise InvalidArgument("partition", f"must be below {partitions}, the store's partitions")
    return request.after_position, request.partition
