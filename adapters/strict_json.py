"""JSON decoding that refuses a key repeated within one object.

`json.loads` keeps the last of two equal keys and drops the other without a word, so a
signed body `{"amount": 1, "amount": 100000}` means whatever the reader's parser picks. The
adapters refuse such a body instead of guessing which value the signer meant.
"""

import json


class RepeatedKey(ValueError):
    """A JSON object names `key` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"repeats the key {key[:64]!r}")
        self.key = key


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) < len(pairs):
        raise RepeatedKey(_first_repeated(pairs))
    return document


def _first_repeated(pairs: list[tuple[str, object]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("a dict of these pairs lost no key")


def loads(body: bytes | str) -> object:
    """json.loads, raising RepeatedKey for a repeated key (and its own errors otherwise)."""
    return json.loads(body, object_pairs_hook=_pairs)
