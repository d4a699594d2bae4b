"""Encryption at rest with the library's AES-GCM cipher: stored bytes are unreadable, the
ledger works the same, and the hash chain is still verified (it is over the plaintext)."""

import pytest
from eventsourcing.cryptography import AESCipher

from ledger.event_log import RecordUndecodable
from ledger.service.application import Ledger
from ledger.service.wallets import wallet_id
from tests.builders import EUR, bet, deposit
from tests.conftest import SteppingClock
from tests.integration.raw_store import RawStore


def _cipher_environment() -> dict[str, str]:
    return {
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(32),
    }


def test_encrypted_store_hides_events_and_replays_them(database_url):
    """With a cipher key the store holds ciphertext; reopening with the key folds the same."""
    environment = _cipher_environment()
    with Ledger(database_url, clock=SteppingClock(), environment=environment) as ledger:
        ledger.execute(deposit("d1", 10 * EUR))
        ledger.execute(bet("b1", 3 * EUR))
    stored = RawStore(database_url).state(wallet_id("p1", "EUR"), 2)
    assert b"Deposited" not in stored and b"player:p1" not in stored
    with Ledger(database_url, environment=environment) as reopened:
        assert reopened.balances("p1", "EUR").cash == 7 * EUR


def test_chain_is_verified_through_the_cipher(database_url):
    """Swapping two encrypted records between versions is caught: each names its position."""
    environment = _cipher_environment()
    with Ledger(database_url, clock=SteppingClock(), environment=environment) as ledger:
        for n in range(3):
            ledger.execute(deposit(f"d{n}", EUR))
    raw, wallet = RawStore(database_url), wallet_id("p1", "EUR")
    second, third = raw.state(wallet, 2), raw.state(wallet, 3)
    raw.set_state(wallet, 2, third)
    raw.set_state(wallet, 3, second)
    with (
        Ledger(database_url, environment=environment) as reopened,
        pytest.raises(RecordUndecodable, match="holds event"),
    ):
        reopened.balances("p1", "EUR")
