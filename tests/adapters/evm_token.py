"""A minimal ERC-20-like token, assembled by hand (no compiler), for the chain watcher's tests.

The contract has no balances and no storage. Its only function is
`transfer(address to, uint256 value)` (selector 0xa9059cbb): it emits
`Transfer(address indexed from, address indexed to, uint256 value)` with from = CALLER,
to = the first argument and data = value, then returns `true`. Any other calldata REVERTs,
so a transaction with the wrong selector fails (receipt status 0, no logs).
"""

from eth_utils import keccak

TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")

# The opcodes used, by their byte values in the Yellow Paper.
OPCODES = {
    "EQ": 0x14,
    "AND": 0x16,
    "SHR": 0x1C,
    "CALLER": 0x33,
    "CALLDATALOAD": 0x35,
    "CODECOPY": 0x39,
    "MSTORE": 0x52,
    "JUMPI": 0x57,
    "JUMPDEST": 0x5B,
    "DUP1": 0x80,
    "LOG3": 0xA3,
    "RETURN": 0xF3,
    "REVERT": 0xFD,
}


def _push(value: int | bytes, width: int | None = None) -> bytes:
    """PUSHn (0x60 + n - 1) followed by n big-endian bytes."""
    data = value if isinstance(value, bytes) else value.to_bytes(width or 1, "big")
    return bytes([0x5F + len(data)]) + data


def _assemble(program: list) -> bytes:
    """Items: opcode names, bytes (already encoded PUSHes), ("label", name) marking a JUMPDEST
    and ("push_label", name) pushing a label's offset as PUSH1. Two passes: offsets, then bytes."""
    offsets, position = {}, 0
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            offsets[item[1]] = position
            position += 1
        elif isinstance(item, tuple):
            position += 2
        else:
            position += 1 if isinstance(item, str) else len(item)
    code = bytearray()
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            code.append(OPCODES["JUMPDEST"])
        elif isinstance(item, tuple):
            code += _push(offsets[item[1]])
        elif isinstance(item, str):
            code.append(OPCODES[item])
        else:
            code += item
    return bytes(code)


def runtime_code() -> bytes:
    return _assemble(
        [
            # Selector: the first 4 calldata bytes = calldata word 0 shifted right by 224 bits.
            _push(0),
            "CALLDATALOAD",
            _push(0xE0),
            "SHR",
            # If it equals transfer's selector, jump to the transfer body...
            _push(TRANSFER_SELECTOR),
            "EQ",
            ("push_label", "transfer"),
            "JUMPI",
            # ...otherwise REVERT(0, 0): the transaction fails and its logs are discarded.
            _push(0),
            "DUP1",
            "REVERT",
            ("label", "transfer"),
            # value (calldata word at 4 + 32) goes to memory[0:32]: it is the log's data.
            _push(0x24),
            "CALLDATALOAD",
            _push(0),
            "MSTORE",
            # LOG3 pops offset, size, topic0, topic1, topic2: push them in reverse order.
            # topic2 = to: calldata word at 4, masked to its low 160 bits (an address).
            _push(0x04),
            "CALLDATALOAD",
            _push(b"\xff" * 20),
            "AND",
            # topic1 = from = the caller.
            "CALLER",
            # topic0 = keccak("Transfer(address,address,uint256)").
            _push(TRANSFER_TOPIC),
            # size 32, offset 0: the log's data is memory[0:32] = value.
            _push(0x20),
            _push(0),
            "LOG3",
            # Return true: memory[0:32] = 1, RETURN(0, 32).
            _push(1),
            _push(0),
            "MSTORE",
            _push(0x20),
            _push(0),
            "RETURN",
        ]
    )


def deployment_code() -> bytes:
    """Init code that copies the runtime code (appended after it) to memory and returns it."""
    runtime = runtime_code()
    init_length = 12  # the six instructions below: 2 + 2 + 2 + 1 + 2 + 2 + 1 bytes
    init = _assemble(
        [
            # CODECOPY(destOffset=0, offset=init_length, size=len(runtime)) pops dest first.
            _push(len(runtime)),
            _push(init_length),
            _push(0),
            "CODECOPY",
            # RETURN(0, len(runtime)): the returned bytes become the contract's code.
            _push(len(runtime)),
            _push(0),
            "RETURN",
        ]
    )
    assert len(init) == init_length
    return init + runtime


def transfer_calldata(to: str, value: int) -> bytes:
    """ABI encoding of transfer(to, value): selector, then two 32-byte words."""
    return (
        TRANSFER_SELECTOR
        + bytes.fromhex(to.removeprefix("0x")).rjust(32, b"\0")
        + value.to_bytes(32, "big")
    )


def deploy(w3, sender: str) -> str:
    """Deploy one copy of the token from sender; returns its checksum address."""
    tx_hash = w3.eth.send_transaction({"from": sender, "data": deployment_code(), "gas": 200_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1 and w3.eth.get_code(receipt["contractAddress"]) == runtime_code()
    return receipt["contractAddress"]
