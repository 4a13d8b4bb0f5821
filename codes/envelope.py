"""The text around a COSE message: zlib, Base45 and the `HCQ1:` context prefix.

`HCQ1:` plays the part of the EU certificate's `HC1:`: it names what the text is and
its version, and stays within the QR alphanumeric alphabet so the whole code can be
encoded in alphanumeric mode.
"""

from __future__ import annotations

import zlib

from codes.b45 import Base45Error, b45encode

PREFIX = "HCQ1:"
_PREFIX_BYTES = PREFIX.encode("ascii")
# A code is a few hundred bytes; refusing to inflate beyond this stops zlib bombs.
MAX_COSE_BYTES = 4096
# zlib is part of the format (as in the EU certificate) but a code has nothing to
# compress: a few short claims and a random signature. Deflating made a code longer
# (155 vs 153 bytes measured) and cost six times as long, so the stream stores its
# input; with a 512-byte window and the smallest memory level the set-up is cheap too.
# Any zlib decoder reads it.
_LEVEL = 0
_WINDOW_BITS = 9
_MEMORY_LEVEL = 1


class PrefixError(ValueError):
    """The text does not start with the context prefix."""


class DecompressError(ValueError):
    """The bytes are not exactly one complete zlib stream of bounded size."""


def wrap(cose: bytes) -> str:
    """The code text of a COSE message."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WINDOW_BITS, _MEMORY_LEVEL)
    return PREFIX + b45encode(compressor.compress(cose) + compressor.flush())


def strip_prefix(code: object) -> str:
    """The Base45 part of a code given as text or bytes; raises `PrefixError`
    unless it starts with the prefix, `Base45Error` if the rest is not ASCII."""
    if isinstance(code, bytes):
        if not code.startswith(_PREFIX_BYTES):
            raise PrefixError(f"does not start with {PREFIX}")
        rest = code[len(_PREFIX_BYTES) :]
        if not rest.isascii():
            raise Base45Error("non-ASCII byte")
        return rest.decode("ascii")
    if isinstance(code, str) and code.startswith(PREFIX):
        return code[len(PREFIX) :]
    raise PrefixError(f"does not start with {PREFIX}")


def inflate(compressed: bytes) -> bytes:
    """The COSE bytes of a zlib stream; raises `DecompressError` for a damaged,
    truncated, oversized or trailing-data stream."""
    decompressor = zlib.decompressobj()
    try:
        cose = decompressor.decompress(compressed, MAX_COSE_BYTES)
    except zlib.error as error:
        raise DecompressError(f"not zlib: {error}") from None
    if decompressor.unconsumed_tail:
        raise DecompressError(f"inflates beyond {MAX_COSE_BYTES} bytes")
    if not decompressor.eof:
        raise DecompressError("truncated zlib stream")
    if decompressor.unused_data:
        raise DecompressError("bytes after the zlib stream")
    return cose

