"""Reading small configuration and state files with a size bound and a field-naming refusal."""

from pathlib import Path

from ledger.core.errors import InvalidArgument


def read_bounded(path: str | Path, size_max: int, *, field: str) -> bytes:
    """The file's bytes; an unreadable or oversized file is refused naming `field`.

    Reads at most size_max + 1 bytes, so a huge file costs no more than a small one.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(size_max + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidArgument(field, f"cannot read {path}: {reason}") from None
    if len(data) > size_max:
        raise InvalidArgument(field, f"{path} is larger than {size_max} bytes")
    return data
