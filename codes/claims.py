"""The claims a health code carries, and their CBOR (CWT-style) mapping.

Claim keys are integers in the manner of CWT (RFC 8392) so a code stays short:

| key     | claim      | CBOR type | meaning                                        |
|---------|------------|-----------|------------------------------------------------|
| 1       | iss        | text      | issuer name                                    |
| 2       | sub        | text      | person pseudonym, `[A-Za-z0-9_-]{1,64}`        |
| 4       | exp        | uint      | expires at, epoch seconds (not accepted from)  |
| 6       | iat        | uint      | issued at, epoch seconds                       |
| -65537  | level      | text      | `green`, `yellow` or `red`                     |
| -65538  | rule_set   | text      | the rule set that assessed it, `id@version`    |

-65537 and -65538 lie in the CWT private-use range (below -65536). Nothing else
about the person is carried (no name, no location, no reasons), and any other key
makes the claims invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
import cbor2

from codes.cbor import CborError, first_item

ISS, SUB, EXP, IAT = 1, 2, 4, 6
LEVEL, RULE_SET = -65537, -65538
CLAIM_KEYS = (ISS, SUB, EXP, IAT, LEVEL, RULE_SET)

_PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RULE_SET = re.compile(r"[A-Za-z0-9_.-]{1,64}@[A-Za-z0-9_.+-]{1,32}")
_MAX_ISSUER = 64
# CBOR unsigned integers up to 2**64-1 exist, but times beyond this cannot be dates.
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


class Level(StrEnum):
    """Risk levels, ordered green < yellow < red."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


_LEVEL_BY_NAME = {level.value: level for level in Level}


class ClaimsError(ValueError):
    """Claims that a code may not carry."""


@dataclass(frozen=True, slots=True)
class HealthClaims:
    """What a code asserts: this pseudonym had this level, from issued_at until expires_at."""

    issuer: str
    person: str
    level: Level
    rule_set: str
    issued_at: int
    expires_at: int

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise ClaimsError(problem)


def _problem(claims: HealthClaims) -> str | None:
    if not isinstance(claims.issuer, str) or not 1 <= len(claims.issuer) <= _MAX_ISSUER:
        return f"issuer must be 1-{_MAX_ISSUER} characters"
    if not isinstance(claims.person, str) or not _PSEUDONYM.fullmatch(claims.person):
        return "person must be a pseudonym of 1-64 characters [A-Za-z0-9_-]"
    if not isinstance(claims.level, Level):
        return "level must be green, yellow or red"
    if not isinstance(claims.rule_set, str) or not _RULE_SET.fullmatch(claims.rule_set):
        return "rule_set must be id@version"
    for name in ("issued_at", "expires_at"):
        value = getattr(claims, name)
        if type(value) is not int or not 0 <= value <= _MAX_EPOCH:
            return f"{name} must be epoch seconds between 0 and {_MAX_EPOCH}"
    if claims.expires_at <= claims.issued_at:
        return "expires_at must be after issued_at"
    return None


def encode_claims(claims: HealthClaims) -> bytes:
    """The CBOR map of `claims`, keys in a fixed order."""
    return cbor2.dumps(
        {
            ISS: claims.issuer,
            SUB: claims.person,
            EXP: claims.expires_at,
            IAT: claims.issued_at,
            LEVEL: claims.level.value,
            RULE_SET: claims.rule_set,
        }
    )


def decode_claims(payload: bytes) -> HealthClaims:
    """The claims a COSE payload carries; raises `ClaimsError` unless it is exactly the
    deterministic encoding of valid claims (nothing missing or extra, right CBOR types).

    Comparing with our own encoding of what was read is the strict part: it refuses
    trailing bytes, keys out of order, non-minimal integers, and keys such as CBOR
    `true` or `1.0` that Python would take for the integer 1.
    """
    try:
        claims_map = first_item(payload)
    except CborError as error:
        raise ClaimsError(str(error)) from None
    if not isinstance(claims_map, dict) or len(claims_map) != len(CLAIM_KEYS):
        raise ClaimsError("claims must be a map of exactly iss, sub, exp, iat, level and rule_set")
    level_name = claims_map.get(LEVEL)
    level = _LEVEL_BY_NAME.get(level_name) if isinstance(level_name, str) else None
    if level is None:
        raise ClaimsError("level must be green, yellow or red")
    try:
        claims = HealthClaims(
            issuer=claims_map[ISS],
            person=claims_map[SUB],
            level=level,
            rule_set=claims_map[RULE_SET],
            issued_at=claims_map[IAT],
            expires_at=claims_map[EXP],
        )
    except KeyError as missing:
        raise ClaimsError(f"claim {missing} missing") from None
    if encode_claims(claims) != payload:
        raise ClaimsError("claims are not in deterministic encoding")
    return claims
