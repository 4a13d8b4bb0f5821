"""Offline verification of a code against a trust list, with a typed verdict.

The checks run in a fixed order and the first failure is the reason, so every
verifier (this one, the browser one, the test vectors) agrees on it.
"""

from __future__ import annotations

from collections.abc import Collection, Container
from dataclasses import dataclass
from enum import StrEnum

from codes.b45 import Base45Error, b45decode
from codes.claims import ClaimsError, HealthClaims, Level, decode_claims
from codes.cose import CoseError, decode_sign1
from codes.envelope import DecompressError, PrefixError, inflate, strip_prefix
from codes.keys import Algorithm, KeyStatus
from codes.revocation import revocation_id
from codes.trust import TrustList


class Reason(StrEnum):
    """Why a code was accepted or refused, in the order the checks run."""

    OK = "OK"
    MALFORMED_PREFIX = "MALFORMED_PREFIX"
    BASE45_INVALID = "BASE45_INVALID"
    DECOMPRESS_FAILED = "DECOMPRESS_FAILED"
    COSE_INVALID = "COSE_INVALID"
    CLAIMS_INVALID = "CLAIMS_INVALID"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_NOT_VALID = "KEY_NOT_VALID"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    LEVEL_NOT_ADMITTED = "LEVEL_NOT_ADMITTED"

    @property
    def claims_verified(self) -> bool:
        """Whether a verdict with this reason got past the signature and the key: only then
        are the claims the issuer's word, fit to be shown as facts."""
        return self in _VERIFIED


_VERIFIED = frozenset({Reason.NOT_YET_VALID, Reason.EXPIRED, Reason.REVOKED, Reason.LEVEL_NOT_ADMITTED, Reason.OK})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying one code. Claims are filled in as far as they could be
    read, also for a refused code; unless `reason.claims_verified` they are an unknown
    sender's say-so, never to be shown as facts. `kid` is hex."""

    reason: Reason
    person: str | None = None
    level: Level | None = None
    issued_at: int | None = None
    expires_at: int | None = None
    kid: str | None = None
    issuer: str | None = None
    rule_set: str | None = None
    revocation_id: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the code is authentic, current, not revoked and its level admitted."""
        return self.reason is Reason.OK


def verify(
    code: str | bytes,
    trust: TrustList,
    *,
    at: int,
    admit: Collection[Level] = (Level.GREEN,),
    revoked: Container[str] = frozenset(),
) -> Verdict:
    """Verify `code` at validation time `at` (epoch seconds) against `trust`.

    `admit` lists the levels this checkpoint lets through; `revoked` holds revocation
    ids (see `codes.revocation`). Never raises for any `code`: every refusal is a
    `Verdict` with its `Reason`.
    """
    try:
        body = strip_prefix(code)
    except PrefixError:
        return Verdict(Reason.MALFORMED_PREFIX)
    except Base45Error:
        return Verdict(Reason.BASE45_INVALID)
    try:
        compressed = b45decode(body)
    except Base45Error:
        return Verdict(Reason.BASE45_INVALID)
    try:
        cose = inflate(compressed)
    except DecompressError:
        return Verdict(Reason.DECOMPRESS_FAILED)
    try:
        message = decode_sign1(cose)
    except CoseError:
        return Verdict(Reason.COSE_INVALID)
    kid = message.kid.hex()
    try:
        claims = decode_claims(message.payload)
    except ClaimsError:
        return Verdict(Reason.CLAIMS_INVALID, kid=kid)
    alg = Algorithm.from_cose_id(message.alg)
    if alg is None:
        return _verdict(Reason.UNSUPPORTED_ALGORITHM, claims, kid)
    candidates = trust.keys_for(message.kid)
    if not candidates:
        return _verdict(Reason.UNKNOWN_KEY, claims, kid)
    # A key of another algorithm cannot have made this signature: a header `alg` that
    # differs from the key's is a bad signature, not a way around the key's own.
    to_be_signed = message.to_be_signed()
    signers = [info for info in candidates if info.alg is alg and info.verify(message.signature, to_be_signed)]
    if not signers:
        return _verdict(Reason.SIGNATURE_INVALID, claims, kid)
    if all(info.status is KeyStatus.REVOKED for info in signers):
        return _verdict(Reason.KEY_REVOKED, claims, kid)
    if not any(info.may_sign(claims.issued_at, claims.expires_at) for info in signers):
        return _verdict(Reason.KEY_NOT_VALID, claims, kid)
    code_id = revocation_id(alg, message.signature)
    if at < claims.issued_at:
        return _verdict(Reason.NOT_YET_VALID, claims, kid, code_id)
    if at >= claims.expires_at:
        return _verdict(Reason.EXPIRED, claims, kid, code_id)
    if code_id in revoked:
        return _verdict(Reason.REVOKED, claims, kid, code_id)
    if claims.level not in admit:
        return _verdict(Reason.LEVEL_NOT_ADMITTED, claims, kid, code_id)
    return _verdict(Reason.OK, claims, kid, code_id)


def _verdict(reason: Reason, claims: HealthClaims, kid: str, code_id: str | None = None) -> Verdict:
    return Verdict(
        reason=reason,
        person=claims.person,
        level=claims.level,
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
        kid=kid,
        issuer=claims.issuer,
        rule_set=claims.rule_set,
        revocation_id=code_id,
    )
