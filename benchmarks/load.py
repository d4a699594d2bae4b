"""The casino traffic the throughput harness sends: rounds of bet then win (sometimes a
rollback), deposits, withdrawals and bonuses, over many players with a share of the traffic
on a few hot players. Each client task owns its keys; every reply is recorded."""

import random
import time
from dataclasses import dataclass, field

from ledger.client import partition_of
from ledger.v1 import ledger_pb2 as pb

HOT_PLAYERS = 3
BATCH_SIZE = 50
PLAYER_DRAWS_MAX = 10_000  # redraws to find a player of the client's partition


@dataclass
class Tally:
    """What one cell of the benchmark saw: latencies, outcomes and each wallet's last reply."""

    latencies_s: list[float] = field(default_factory=list)
    commands: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    last_seen: dict[str, tuple[int, str, str, str]] = field(default_factory=dict)

    def record(self, player: str, response: pb.CommandResponse) -> None:
        outcome = pb.Outcome.Name(response.outcome)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        seen = self.last_seen.get(player)
        b = response.balances
        if seen is None or response.wallet_version >= seen[0]:
            self.last_seen[player] = (response.wallet_version, b.cash, b.bonus, b.held)

    def record_reply(self, player: str, reply) -> None:
        """As `record`, for the client library's `Reply`."""
        self.outcomes[reply.outcome] = self.outcomes.get(reply.outcome, 0) + 1
        seen = self.last_seen.get(player)
        b = reply.balances
        if seen is None or reply.wallet_version >= seen[0]:
            self.last_seen[player] = (reply.wallet_version, b.cash, b.bonus, b.held)


class Traffic:
    """One client's stream of commands; deterministic from its seed."""

    def __init__(
        self,
        name: str,
        players: int,
        hot_share_percent: int,
        seed: int,
        hot_players: int = HOT_PLAYERS,
        partition: tuple[int, int] = (0, 1),
    ) -> None:
        self.partition, self.partitions = partition
        self.name = name
        self.players = players
        self.hot_share_percent = hot_share_percent
        self.hot_players = hot_players
        self.rng = random.Random(seed)
        self.serial = 0
        self.open_bet: tuple[str, str] | None = None  # (player, bet key) awaiting its win

    def player(self) -> str:
        """A player of this client's partition (every player when there is one partition)."""
        for _ in range(PLAYER_DRAWS_MAX):
            player = self._any_player()
            if partition_of(player, self.partitions) == self.partition:
                return player
        raise RuntimeError(f"no player of partition {self.partition} in {PLAYER_DRAWS_MAX} draws")

    def _any_player(self) -> str:
        if self.rng.randrange(100) < self.hot_share_percent:
            return f"hot{self.rng.randrange(self.hot_players)}"
        return f"p{self.rng.randrange(self.players)}"

    def next(self) -> tuple[str, pb.Command]:
        """(player, command): a round's win follows its bet; otherwise a weighted choice."""
        self.serial += 1
        key = f"{self.name}-{self.serial}"
        if self.open_bet is not None:
            player, bet_key = self.open_bet
            self.open_bet = None
            return player, self._settle(player, key, bet_key)
        player, roll = self.player(), self.rng.randrange(100)
        wallet = {"idempotency_key": key, "player_id": player, "currency": "EUR"}
        if roll < 88:
            self.open_bet = (player, key)
            amount = f"{self.rng.randrange(10, 500) / 100:.2f}"
            return player, pb.Command(
                bet=pb.BetRequest(provider="hub88", amount=amount, round_id=key, **wallet)
            )
        if roll < 95:
            return player, pb.Command(
                deposit=pb.DepositRequest(amount="50", rail="psp", rail_id="stripe", **wallet)
            )
        if roll < 98:
            return player, pb.Command(
                request_withdrawal=pb.RequestWithdrawalRequest(
                    amount="5", rail="psp", rail_id="stripe", **wallet
                )
            )
        return player, pb.Command(
            grant_bonus=pb.GrantBonusRequest(amount="10", wagering_multiplier=5, **wallet)
        )

    def _settle(self, player: str, key: str, bet_key: str) -> pb.Command:
        common = {
            "idempotency_key": key,
            "provider": "hub88",
            "player_id": player,
            "currency": "EUR",
        }
        if self.rng.randrange(100) < 6:
            return pb.Command(rollback=pb.RollbackRequest(target_key=bet_key, **common))
        amount = self.rng.choice(("0", "0", "1.5", "4", "10"))
        return pb.Command(
            win=pb.WinRequest(bet_key=bet_key, amount=amount, round_closed=True, **common)
        )


def percentile_ms(latencies_s: list[float], percent: float) -> float:
    if not latencies_s:
        return 0.0
    ordered = sorted(latencies_s)
    index = min(len(ordered) - 1, int(len(ordered) * percent / 100))
    return round(ordered[index] * 1000, 2)


def now_s() -> float:
    return time.perf_counter()
