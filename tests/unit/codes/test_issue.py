"""Issuing refuses codes the key may not sign."""

from __future__ import annotations

import pytest

from codes import ClaimsError, IssueError, KeyStatus, Level, SigningKey, issue
from codes.keys import KeyInfo
from tests.unit.codes.conftest import EXPIRES_AT, ISSUED_AT, KEYS_FROM, KEYS_UNTIL


def _issue(key: SigningKey, **changes: object) -> str:
    fields: dict[str, object] = dict(
        person="p-42", level=Level.GREEN, rule_set="default@1", issued_at=ISSUED_AT, expires_at=EXPIRES_AT
    )
    fields.update(changes)
    return issue(key, **fields)  # type: ignore[arg-type]


def test_levels_may_be_given_by_name(ed_key: SigningKey) -> None:
    assert _issue(ed_key, level="yellow") != _issue(ed_key, level="red")


def test_ed25519_codes_are_deterministic_and_short(ed_key: SigningKey) -> None:
    assert _issue(ed_key) == _issue(ed_key)
    assert len(_issue(ed_key)) < 260


@pytest.mark.parametrize(
    "changes",
    [
        {"issued_at": KEYS_FROM - 1, "expires_at": KEYS_FROM + 3600},
        {"issued_at": KEYS_UNTIL - 3600, "expires_at": KEYS_UNTIL + 1},
        {"issued_at": KEYS_UNTIL, "expires_at": KEYS_UNTIL + 3600},
    ],
    ids=["before-the-key", "outliving-the-key", "after-the-key"],
)
def test_a_code_outside_the_keys_validity_is_not_issued(changes: dict[str, object], ed_key: SigningKey) -> None:
    with pytest.raises(IssueError):
        _issue(ed_key, **changes)


def test_a_revoked_key_issues_nothing(ed_key: SigningKey) -> None:
    info = ed_key.info
    revoked = SigningKey(KeyInfo(info.kid, info.alg, info.public_key, info.valid_from, info.valid_until, KeyStatus.REVOKED), ed_key.private_key)
    with pytest.raises(IssueError, match="revoked"):
        _issue(revoked)


@pytest.mark.parametrize("changes", [{"person": "Jane Doe"}, {"level": "purple"}, {"expires_at": ISSUED_AT}])
def test_claims_a_code_may_not_carry_are_not_issued(changes: dict[str, object], ed_key: SigningKey) -> None:
    with pytest.raises(ClaimsError):
        _issue(ed_key, **changes)
