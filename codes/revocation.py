"""Revocation of single codes before they expire.

A code's revocation id is the first 16 bytes of SHA-256 over its signature, as
lowercase hex, the way EU DCC verifiers identify certificates. For ES256 only the `r`
half is hashed: `(r, s)` and `(r, n - s)` are both valid signatures of the same code,
so hashing `s` too would let a revoked code slip through with its twin signature.
Ed25519 signatures are not malleable (the verifier rejects a non-canonical `S`).

The revocation list is a JSON array of those ids, for example
`["4f0c2e3a9b1d5e7f00112233aabbccdd"]`; order and duplicates do not matter.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

import orjson

from codes.b45 import b45decode
from codes.cose import decode_sign1
from codes.envelope import inflate, strip_prefix
from codes.keys import Algorithm

_ID_BYTES = 16
_ID = re.compile(r"[0-9a-f]{32}")
_ES256_R_BYTES = 32


class RevocationListError(ValueError):
    """A revocation list that is not a JSON array of revocation ids."""


def revocation_id(alg: Algorithm, signature: bytes) -> str:
    """The id under which a code with this signature is revoked."""
    signed = signature[:_ES256_R_BYTES] if alg is Algorithm.ES256 else signature
    return hashlib.sha256(signed).digest()[:_ID_BYTES].hex()


def revocation_id_of(code: str) -> str:
    """The revocation id of a code, read without verifying it (an issuer revoking its own
    code need not hold a trust list); raises `ValueError` if it is not a code at all."""
    message = decode_sign1(inflate(b45decode(strip_prefix(code))))
    alg = Algorithm.from_cose_id(message.alg)
    if alg is None:
        raise ValueError(f"unsupported COSE algorithm {message.alg}")
    return revocation_id(alg, message.signature)


def parse_revocation_list(data: bytes) -> frozenset[str]:
    """The ids of a revocation list file; raises `RevocationListError` if malformed."""
    try:
        ids = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise RevocationListError(f"not JSON: {error}") from None
    if not isinstance(ids, list) or not all(isinstance(item, str) and _ID.fullmatch(item) for item in ids):
        raise RevocationListError("must be a JSON array of 32-character lowercase hex revocation ids")
    return frozenset(ids)


def dump_revocation_list(ids: Iterable[str]) -> bytes:
    """A revocation list file holding `ids`, sorted, one per line."""
    checked = sorted(set(ids))
    for item in checked:
        if not _ID.fullmatch(item):
            raise RevocationListError(f"not a revocation id: {item!r}")
    return orjson.dumps(checked, option=orjson.OPT_INDENT_2) + b"\n"
