"""Base45 (RFC 9285), vectorised: the pure-Python `base45` package costs more than an
Ed25519 signature per code, and issuing and verifying may only add a fraction of one."""

from __future__ import annotations

import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
_VALUE_OF = bytes(ALPHABET.find(chr(b)) if chr(b) in ALPHABET else _INVALID for b in range(256))
_CHAR_OF = ALPHABET.encode("ascii").ljust(256, b"\0")
# The three characters of every byte pair (192 KiB) as one 3-byte item each, so that a
# single fancy-indexing step encodes a whole code.
_PAIRS = np.arange(65536)
_PAIR_CHARS = np.frombuffer(
    np.stack([_PAIRS % 45, _PAIRS // 45 % 45, _PAIRS // 2025], axis=1).astype(np.uint8).tobytes().translate(_CHAR_OF),
    dtype=np.dtype((np.void, 3)),
)


class Base45Error(ValueError):
    """The text is not canonical Base45."""


def b45encode(data: bytes) -> str:
    """Base45 text of `data`: each byte pair becomes three characters, a last odd byte two."""
    whole = len(data) & ~1
    text = _PAIR_CHARS[np.frombuffer(data, dtype=">u2", count=whole // 2)].tobytes()
    if len(data) & 1:
        text += bytes((data[-1] % 45, data[-1] // 45)).translate(_CHAR_OF)
    return text.decode("ascii")


def b45decode(text: str) -> bytes:
    """The bytes of Base45 `text`; raises `Base45Error` for any character outside the
    alphabet, a dangling single character, or a group whose value does not fit."""
    if not text.isascii():
        raise Base45Error("non-ASCII character")
    values = text.encode("ascii").translate(_VALUE_OF)
    size = len(values)
    tail = size % 3
    if tail == 1:
        raise Base45Error("length leaves a single character")
    if _INVALID in values:
        raise Base45Error("character outside the Base45 alphabet")
    groups = size // 3
    whole = 3 * groups
    # Every group at once, in big-integer arithmetic: each digit position becomes one
    # integer with a digit per 3-byte slot, and low + 45 mid + 2025 high fits a slot
    # (at most 91124), so no carry crosses slots and each slot holds its group's value.
    slots = bytearray(whole)
    slots[2::3] = values[0:whole:3]
    low = int.from_bytes(slots, "big")
    slots[2::3] = values[1:whole:3]
    middle = int.from_bytes(slots, "big")
    slots[2::3] = values[2:whole:3]
    high = int.from_bytes(slots, "big")
    wide = (low + 45 * middle + 2025 * high).to_bytes(whole, "big")
    if wide[0::3].count(0) != groups:
        raise Base45Error("a three-character group exceeds two bytes")
    data = bytearray(2 * groups)
    data[0::2] = wide[1::3]
    data[1::2] = wide[2::3]
    if tail == 2:
        last = values[-2] + 45 * values[-1]
        if last > 0xFF:
            raise Base45Error("the final two-character group exceeds one byte")
        data.append(last)
    return bytes(data)
