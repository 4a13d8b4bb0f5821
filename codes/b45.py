"""Base45 (RFC 9285) with numpy, because the pure-Python `base45` package costs more
than an Ed25519 signature per code and the issue/verify budgets are a fraction of one."""

from __future__ import annotations

import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
_VALUE_OF = bytes(ALPHABET.find(chr(b)) if chr(b) in ALPHABET else _INVALID for b in range(256))
_CHAR_OF = ALPHABET.encode("ascii").ljust(256, b"\0")
_TRIPLE_WEIGHTS = np.array([1, 45, 45 * 45], dtype=np.uint32)
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
    whole = size - tail
    groups = np.frombuffer(values, dtype=np.uint8, count=whole).reshape(-1, 3) @ _TRIPLE_WEIGHTS
    if groups.size and int(groups.max()) > 0xFFFF:
        raise Base45Error("a three-character group exceeds two bytes")
    data = groups.astype(">u2").tobytes()
    if tail == 2:
        last = values[-2] + 45 * values[-1]
        if last > 0xFF:
            raise Base45Error("the final two-character group exceeds one byte")
        data += bytes((last,))
    return data
