"""Issuing a code: claims, signed in COSE_Sign1, wrapped as `HCQ1:` text."""

from __future__ import annotations

from codes.claims import ClaimsError, HealthClaims, Level, encode_claims
from codes.cose import encode_sign1
from codes.envelope import wrap
from codes.keys import SigningKey
from scoring.timeutil import format_rfc3339


class IssueError(ValueError):
    """A code that may not be issued with this key at these times."""


def issue(
    key: SigningKey,
    *,
    person: str,
    level: Level | str,
    rule_set: str,
    issued_at: int,
    expires_at: int,
    issuer: str = "healthcode",
) -> str:
    """The code text (`HCQ1:...`) stating that `person` has `level` from `issued_at`
    until `expires_at` (epoch seconds), signed by `key`.

    Raises `IssueError` when the key is revoked, not yet or no longer valid at
    `issued_at`, or would expire before the code does, and `ClaimsError` (a
    `ValueError`) for claims a code may not carry.
    """
    if not isinstance(level, Level):
        try:
            level = Level(level)
        except ValueError:
            raise ClaimsError(f"level must be green, yellow or red, not {level!r}") from None
    claims = HealthClaims(
        issuer=issuer,
        person=person,
        level=level,
        rule_set=rule_set,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    info = key.info
    if not info.may_sign(issued_at, expires_at):
        raise IssueError(
            f"key {info.kid.hex()} ({info.status}, valid {format_rfc3339(info.valid_from)} to "
            f"{format_rfc3339(info.valid_until)}) may not sign a code valid "
            f"{format_rfc3339(issued_at)} to {format_rfc3339(expires_at)}"
        )
    return wrap(encode_sign1(info.alg.cose_id, info.kid, encode_claims(claims), key.sign))

