"""Claims carry a pseudonym, a level, a rule set and two times, nothing else."""

from __future__ import annotations

import cbor2
import pytest

from codes.claims import ClaimsError, HealthClaims, Level, decode_claims, encode_claims


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
    assert decode_claims(encode_claims(claims)) == claims


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


CANONICAL = b"\xa6\x01\x6ahealthcode\x02\x64p-42\x04\x18\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1"


def test_the_deterministic_encoding_of_the_claims_decodes() -> None:
    assert encode_claims(_claims()) == CANONICAL
    assert decode_claims(CANONICAL) == _claims()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xa6\xf5\x6ahealthcode\x02\x64p-42\x04\x18\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1",
        b"\xa6\x01\x6ahealthcode\x02\x64p-42\x04\x19\x00\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1",
        b"\xa6\x02\x64p-42\x01\x6ahealthcode\x04\x18\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1",
        b"\xa6\x01\x6ahealthcode\x02\x64p-42\x04\x18\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1\x00",
        b"\xa6\x01\x6ahealthcode\x02\x64p-42\x04\xc1\x18\xc8\x06\x18\x64\x3a\x00\x01\x00\x00\x65green\x3a\x00\x01\x00\x01\x69default@1",
    ],
    ids=["true-as-iss-key", "non-minimal-exp", "keys-out-of-order", "trailing-byte", "exp-as-date-tag"],
)
def test_any_other_encoding_of_the_same_claims_is_refused(payload: bytes) -> None:
    with pytest.raises(ClaimsError):
        decode_claims(payload)
