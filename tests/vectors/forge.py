"""Building tampered and forged codes for the conformance vectors and the unit tests.

Every function takes a real code or a real key and changes one thing, the way an
attacker or a damaged print would, without going through `codes.issue`'s checks.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable

import cbor2

from codes.b45 import b45decode, b45encode
from codes.claims import EXP, IAT, ISS, LEVEL, RULE_SET, SUB
from codes.cose import Sign1, decode_sign1, encode_sign1, sig_structure
from codes.envelope import PREFIX, inflate, strip_prefix, wrap
from codes.keys import SigningKey


def claims_map(
    *, person: str = "p-42", level: str = "green", issued_at: int, expires_at: int,
    issuer: str = "healthcode", rule_set: str = "default@1",
) -> dict[int, Any]:
    """A claims map as `codes.claims` would encode it, free to be made wrong afterwards."""
    return {ISS: issuer, SUB: person, EXP: expires_at, IAT: issued_at, LEVEL: level, RULE_SET: rule_set}


def sign_claims(key: SigningKey, claims: dict[Any, Any], *, alg_id: int | None = None, kid: bytes | None = None) -> str:
    """A code over any claims map, properly signed by `key` (no validity checks)."""
    return wrap(
        encode_sign1(
            key.info.alg.cose_id if alg_id is None else alg_id,
            key.info.kid if kid is None else kid,
            cbor2.dumps(claims),
            key.sign,
        )
    )


def message_of(code: str) -> Sign1:
    """The COSE_Sign1 parts of a well-formed code."""
    return decode_sign1(cose_of(code))


def assemble(protected: bytes, unprotected: Any, payload: bytes, signature: bytes, *, tag: int | None = 18) -> bytes:
    """COSE_Sign1 bytes from parts, tagged or not."""
    parts = [protected, unprotected, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(tag, parts) if tag is not None else parts)


def rewrap(code: str, change: Callable[[Sign1], bytes]) -> str:
    """A code whose COSE message is rebuilt by `change` from the original parts and
    wrapped again, keeping the original signature (it is not re-signed)."""
    return wrap(change(message_of(code)))


def with_payload(code: str, claims: dict[Any, Any]) -> str:
    """The code carrying other claims under its old signature."""
    return rewrap(code, lambda m: assemble(m.protected, {}, cbor2.dumps(claims), m.signature))


def with_header(code: str, header: dict[Any, Any]) -> str:
    """The code with another protected header under its old signature."""
    return rewrap(code, lambda m: assemble(cbor2.dumps(header), {}, m.payload, m.signature))


def resigned_with_header(key: SigningKey, code: str, header: dict[Any, Any]) -> str:
    """The code's payload under another protected header, signed again by `key`."""
    message = message_of(code)
    protected = cbor2.dumps(header)
    return wrap(assemble(protected, {}, message.payload, key.sign(sig_structure(protected, message.payload))))


def cose_of(code: str) -> bytes:
    """The COSE bytes inside a code."""
    return inflate(b45decode(strip_prefix(code)))


def zlib_of(code: str) -> bytes:
    """The zlib stream inside a code, as it is."""
    return b45decode(strip_prefix(code))


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def malleated(code: str) -> str:
    """An ES256 code with its twin signature `(r, n - s)`: just as valid, other bytes."""
    message = message_of(code)
    r, s = message.signature[:32], int.from_bytes(message.signature[32:], "big")
    return wrap(assemble(message.protected, {}, message.payload, r + (P256_ORDER - s).to_bytes(32, "big")))


def base45_text(data: bytes) -> str:
    """Prefix + Base45 of `data`, with no zlib in between."""
    return PREFIX + b45encode(data)


def deflated_text(data: bytes) -> str:
    """Prefix + Base45 + zlib (level 9) of arbitrary bytes."""
    return PREFIX + b45encode(zlib.compress(data, 9))


def flip_character(code: str, position: int) -> str:
    """The code with the Base45 character at `position` (after the prefix) replaced by
    the next one in the alphabet, so the text stays valid Base45 in form."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    body = strip_prefix(code)
    swapped = alphabet[(alphabet.index(body[position]) + 1) % len(alphabet)]
    return PREFIX + body[:position] + swapped + body[position + 1 :]


def dangling(code: str) -> str:
    """The code cut to a Base45 length of 3k + 1, which no byte string encodes to."""
    body = strip_prefix(code)
    return PREFIX + body[: 3 * (len(body) // 3) - 2]


def truncated(code: str) -> str:
    """The code cut at a Base45 group boundary, losing its last two to three bytes: still
    Base45, no longer a whole zlib stream."""
    body = strip_prefix(code)
    return PREFIX + body[: 3 * (len(body) // 3 - 1)]
