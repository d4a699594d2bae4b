"""64 clients on one wallet at once, on SQLite and PostgreSQL: bets past the funds, resends,
and wins with new bets. No update is lost: exactly the bets the funds allow are accepted,
every resend answers as the first send, and the balance equals the model."""

import threading
from collections.abc import Callable

import pytest

from tests.faults.cleanup import cleanup
from tests.faults.load import (
    SUCCESS,
    Answer,
    Item,
    Tally,
    bet,
    check_store,
    deposit,
    send_until_answered,
    win,
)
from tests.faults.servers import stop_cleanly
from tests.grpc.conftest import RunningServer, start_server

pytestmark = pytest.mark.slow

CLIENT_COUNT = 64
BETS_PER_CLIENT = 4  # two unary calls, then one SubmitBatch of two
PLAYER = "hot"
FUNDS = "300"
STAKE = "1.5"
BETS_FUNDED = 200  # 300 / 1.5: of the 256 bets placed, exactly these fit
JOIN_TIMEOUT_S = 180


def send_twice(client, unit: list[Item], tally: Tally) -> list[Answer]:
    """Sends a unit and resends it; the resend must answer as the first send did."""
    first = [Answer(r.outcome, r.journal_id) for r in send_until_answered(client, unit, tally)]
    again = [Answer(r.outcome, r.journal_id) for r in send_until_answered(client, unit, tally)]
    for was, now in zip(first, again, strict=True):
        assert now == (Answer("DUPLICATE", was.journal_id) if was.outcome == "OK" else was)
    return first


def place_bets(client, n: int, tally: Tally) -> list[Item]:
    """The client's bets past the funds; returns those accepted."""
    bets = [bet(f"hot-{n}-bet-{k}", PLAYER, STAKE) for k in range(BETS_PER_CLIENT)]
    units = [[bets[0]], [bets[1]], bets[2:]]
    answers = [answer for unit in units for answer in send_twice(client, unit, tally)]
    return [item for item, answer in zip(bets, answers, strict=True) if answer.outcome == "OK"]


def win_and_bet_again(client, n: int, accepted: list[Item], tally: Tally) -> None:
    """A win of 2 for each accepted bet, each in one batch with a new bet of 1.5."""
    for k, placed in enumerate(accepted):
        unit = [win(f"hot-{n}-win-{k}", placed, "2"), bet(f"hot-{n}-rebet-{k}", PLAYER, STAKE)]
        send_twice(client, unit, tally)


def run_clients(server: RunningServer, play: Callable[[object, int], None]) -> None:
    """play(client, n) in CLIENT_COUNT threads at once, each with its own channel."""
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENT_COUNT)

    def run(n: int) -> None:
        try:
            with server.client() as client:
                start.wait(timeout=JOIN_TIMEOUT_S)
                play(client, n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CLIENT_COUNT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)
        assert not thread.is_alive()
    assert errors == [], errors[:3]


def test_64_clients_on_one_wallet_lose_no_update(database_url, tmp_path, fault_figures):
    """Exactly the funded bets are accepted, resends replay, and the balance equals the model."""
    server = start_server(database_url, tmp_path)
    tally = Tally()
    accepted: dict[int, list[Item]] = {}
    with cleanup(lambda: stop_cleanly(server)):
        with server.client() as client:
            send_until_answered(client, [deposit("hot-funds", PLAYER, FUNDS)], tally)
        run_clients(server, lambda client, n: accepted.update({n: place_bets(client, n, tally)}))
        assert sum(len(bets) for bets in accepted.values()) == BETS_FUNDED
        with server.client() as client:
            assert client.get_balance(player_id=PLAYER, currency="EUR")[0].cash == "0"
        run_clients(server, lambda client, n: win_and_bet_again(client, n, accepted[n], tally))
    successes = sum(answer.outcome in SUCCESS for answer in tally.answers.values())
    fault_figures(
        **check_store(database_url, tally),
        clients=CLIENT_COUNT,
        bets_funded=BETS_FUNDED,
        applied=successes,
    )
