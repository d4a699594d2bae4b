"""The working draft of one decision: events emitted so far and the state they lead to.

A draft is local to one `decide` call. Each emitted event is numbered, chained to its
predecessor and folded with `evolve` at once, so later checks in the same command (bonus
conversion after a win, say) see its effect, and the events `decide` returns are exactly
those the store will hold.
"""

from datetime import datetime
from uuid import UUID

import msgspec

from ledger.core import events as e
from ledger.core.chain import chain_digest, genesis_hash
from ledger.core.commands import Command
from ledger.core.evolve import evolve
from ledger.core.policy import Rules
from ledger.core.state import SuspenseItem, WalletState


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """What the shell passes in: the time, the new journal's id, the wallet id, the rules,
    for a suspense attribution the item it resolves (None if there is no such item), and
    for a rollback the wallet whose command holds the target key (None if no command does).

    A frozen msgspec Struct rather than a frozen dataclass: one is built per command, and
    the dataclass's __init__ sets each field through object.__setattr__, far slower."""

    now: datetime
    journal_id: UUID
    wallet_id: UUID
    rules: Rules
    suspense_item: SuspenseItem | None = None
    target_wallet_id: UUID | None = None


class Draft:
    def __init__(self, state: WalletState | None, command: Command, context: Context) -> None:
        self.state = state
        self.command = command
        self.context = context
        self.events: list[e.WalletEvent] = []
        self.item_events: list[e.WalletEvent] = []  # of another stream: a suspense item

    @property
    def wallet(self) -> WalletState:
        assert self.state is not None, "wallet not opened"
        return self.state

    def emit(self, event_type: type[e.WalletEvent], postings: tuple[e.Posting, ...], **fields):
        """Builds the next event of the stream, checks its journal balances, folds it."""
        postings = tuple([posting for posting in postings if posting.amount != 0])
        assert sum([posting.amount for posting in postings]) == 0, postings
        version = 1 if self.state is None else self.state.version + 1
        previous = (
            genesis_hash(self.context.wallet_id) if self.state is None else self.state.head_hash
        )
        event = event_type(
            originator_id=self.context.wallet_id,
            originator_version=version,
            recorded_at=self.context.now,
            previous_hash=previous,
            journal_id=self.context.journal_id,
            key=self.command.idempotency_key,
            currency=self.command.currency,
            postings=postings,
            occurred_at=self.command.occurred_at,
            **fields,
        )
        self.state = evolve(self.state, event, chain_digest(event))
        self.events.append(event)


def posting(account: str, amount: int) -> e.Posting:
    return e.Posting(account, amount)
