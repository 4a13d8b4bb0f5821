"""Claims carry a pseudonym, a level, a rule set and two times, nothing else."""

from __future__ import annotations

import cbor2
import pytest

from codes.claims import ClaimsError, HealthClaims, Level, claims_from_map, encode_claims


def _claims(**changes: object) -> HealthClaims:
    fields: dict[str, object] = dict(
        issuer="healthcode", person="p-42", level=Level.GREEN, rule_set="default@1", issued_at=100, expires_at=200
    )
    fields.update(changes)
    return HealthClaims(**fields)  # type: ignore[arg-type]


def test_claims_encode_with_cwt_integer_keys_in_deterministic_order() -> None:
    encoded = encode_claims(_claims())
    assert list(cbor2.loads(encoded).items()) == [
        (1, "healthcode"), (2, "p-42"), (4, 200), (6, 100), (-65537, "green"), (-65538, "default@1")
    ]
    assert cbor2.dumps(cbor2.loads(encoded), canonical=True) == encoded


def test_claims_decode_back_to_what_was_encoded() -> None:
    claims = _claims(level=Level.RED, person="A_b-9")
    assert claims_from_map(cbor2.loads(encode_claims(claims))) == claims


def test_levels_are_ordered_names() -> None:
    assert [level.value for level in Level] == ["green", "yellow", "red"]


@pytest.mark.parametrize(
    "changes",
    [
        {"person": "Jane Doe"},
        {"person": ""},
        {"person": "x" * 65},
        {"issuer": ""},
        {"rule_set": "default"},
        {"rule_set": "de fault@1"},
        {"issued_at": -1},
        {"issued_at": True},
        {"expires_at": 100},
        {"expires_at": 10**12},
        {"level": "green"},
    ],
    ids=[
        "name", "empty-person", "long-person", "empty-issuer", "no-version", "space-in-rule-set",
        "negative-time", "bool-time", "expires-at-issue", "year-beyond-9999", "level-as-plain-text",
    ],
)
def test_claims_a_code_may_not_carry_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ClaimsError):
        _claims(**changes)
