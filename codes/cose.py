"""COSE_Sign1 (RFC 9052) for health codes, by hand on cbor2.

Only the shape we issue is accepted: tag 18 around `[protected, {}, payload, signature]`,
with a protected header of exactly `{1: alg, 4: kid}`, everything in CBOR core
deterministic encoding. Encoding the decoded parts again must give back the same
bytes, which rejects trailing bytes, non-minimal lengths and any other spelling in one
comparison and leaves no second encoding of a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import cbor2

from codes.cbor import CborError, first_item, has_int_keys, strict_loads

SIGN1_TAG = 18
# Tag 18 is a one-byte head (major type 6, value 18). Prefixing it to the array by hand
# is the same encoding as cbor2's CBORTag at a fifth of the cost.
_SIGN1_TAG_HEAD = b"\xd2"
HEADER_ALG = 1
HEADER_KID = 4
_SIGNATURE1 = "Signature1"


class CoseError(ValueError):
    """Bytes that are not a COSE_Sign1 message of our shape."""


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded COSE_Sign1 message; `alg` is the raw COSE value, checked later."""

    protected: bytes
    alg: int
    kid: bytes
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        """The Sig_structure the signature covers."""
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """`["Signature1", protected, external_aad = h'', payload]` as CBOR."""
    return cbor2.dumps([_SIGNATURE1, protected, b"", payload])


@lru_cache(maxsize=64)
def protected_header(alg_id: int, kid: bytes) -> bytes:
    """The encoded protected header; the same for every code a key signs."""
    return cbor2.dumps({HEADER_ALG: alg_id, HEADER_KID: kid})


def encode_sign1(alg_id: int, kid: bytes, payload: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """A tagged COSE_Sign1 message over `payload`, signed by `sign`."""
    protected = protected_header(alg_id, kid)
    return _message(protected, payload, sign(sig_structure(protected, payload)))


def _message(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    return _SIGN1_TAG_HEAD + cbor2.dumps([protected, {}, payload, signature])


def decode_sign1(data: bytes) -> Sign1:
    """The parts of a COSE_Sign1 message; raises `CoseError` for anything else."""
    try:
        message = first_item(data)
    except CborError as error:
        raise CoseError(str(error)) from None
    if not isinstance(message, cbor2.CBORTag) or message.tag != SIGN1_TAG:
        raise CoseError("not a tagged COSE_Sign1 message")
    parts = message.value
    if not isinstance(parts, (list, tuple)) or len(parts) != 4:
        raise CoseError("COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = parts
    if not (type(protected) is bytes and type(payload) is bytes and type(signature) is bytes):
        raise CoseError("protected header, payload and signature must be byte strings")
    if not has_int_keys(unprotected, ()):
        raise CoseError("the unprotected header must be an empty map")
    if _message(protected, payload, signature) != data:
        raise CoseError("not in deterministic encoding, or bytes after the message")
    alg, kid = _header_fields(protected)
    return Sign1(protected, alg, kid, payload, signature)


# Every code a key signs carries the same protected header, so a checkpoint sees a few
# distinct headers over and over; remembering them skips a decode per code. Only
# headers that parse are remembered (an exception is never cached).
@lru_cache(maxsize=256)
def _header_fields(protected: bytes) -> tuple[int, bytes]:
    try:
        header = strict_loads(protected)
    except CborError as error:
        raise CoseError(f"protected header: {error}") from None
    if not has_int_keys(header, (HEADER_ALG, HEADER_KID)):
        raise CoseError("the protected header must hold exactly alg and kid")
    alg, kid = header[HEADER_ALG], header[HEADER_KID]
    if type(alg) is not int or type(kid) is not bytes:
        raise CoseError("alg must be an integer and kid a byte string")
    return alg, kid
