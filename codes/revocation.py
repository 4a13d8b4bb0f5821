"""Revocation of single codes before they expire.

A code's revocation id is the first 16 bytes of SHA-256 over its signature, as
lowercase hex, the way EU DCC verifiers identify certificates. For ES256 only the `r`
half is hashed: `(r, s)` and `(r, n - s)` are both valid signatures of the same code,
so hashing `s` too would let a revoked code slip through with its twin signature.
Ed25519 signatures are not malleable (the verifier rejects a non-canonical `S`).

The revocation list names its format and dates and holds those ids, for example
`{"format": "healthcode-revocation-list/2", "issued_at": ..., "next_update": ...,
"revoked": ["4f0c2e3a9b1d5e7f00112233aabbccdd"]}`; order and duplicates do not matter.
Checkpoints receive it inside a signed envelope (`codes.signed`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from codes.b45 import b45decode
from codes.cose import decode_sign1
from codes.envelope import inflate, strip_prefix
from codes.keys import Algorithm
from codes.listtimes import ListTimes, body_json, list_times

REVOCATION_LIST_FORMAT = "healthcode-revocation-list/2"
_ID_BYTES = 16
_ID = re.compile(r"[0-9a-f]{32}")
_ES256_R_BYTES = 32


class RevocationListError(ValueError):
    """A revocation list that is malformed or holds something other than revocation ids."""


class RevocationListDocument(BaseModel):
    """A revocation list file (the body of a signed list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["healthcode-revocation-list/2"]
    issued_at: str
    next_update: str
    revoked: list[str]


@dataclass(frozen=True, slots=True)
class RevocationList:
    """The revoked codes' ids, with the list's dates; `id in revocation_list` asks."""

    ids: frozenset[str]
    times: ListTimes

    def __contains__(self, code_id: object) -> bool:
        return code_id in self.ids


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


def parse_revocation_list(data: bytes) -> RevocationList:
    """A revocation list from its JSON; raises `RevocationListError` if malformed."""
    try:
        document = RevocationListDocument.model_validate_json(data)
        times = list_times(document.issued_at, document.next_update)
    except ValidationError as error:
        first = error.errors()[0]
        raise RevocationListError(f"not a revocation list: {first['msg']} at {first['loc']}") from None
    except ValueError as error:
        raise RevocationListError(f"revocation list dates: {error}") from None
    bad = [item for item in document.revoked if not _ID.fullmatch(item)]
    if bad:
        raise RevocationListError(f"not a revocation id (32 lowercase hex digits): {bad[0]!r}")
    return RevocationList(frozenset(document.revoked), times)


def dump_revocation_list(ids: Iterable[str], times: ListTimes) -> bytes:
    """The JSON of a revocation list holding `ids`, sorted, without duplicates."""
    checked = sorted(set(ids))
    for item in checked:
        if not _ID.fullmatch(item):
            raise RevocationListError(f"not a revocation id: {item!r}")
    return body_json(times, REVOCATION_LIST_FORMAT, revoked=checked)
