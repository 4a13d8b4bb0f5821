"""The conformance vectors in tests/vectors: every file holds, and together they cover
every reason for both algorithms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from codes import open_signed_list, parse_list_key, parse_revocation_list
from codes.verify import Reason
from scoring.timeutil import format_rfc3339
from tests.vectors.generate import write_vectors
from tests.vectors.verdict import verdict_of

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
FILES = sorted(VECTORS.glob("*.json"))
LISTS = VECTORS / "lists"


def _load(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def _verdict_of(vector: dict[str, Any]) -> dict[str, Any]:
    verdict = verdict_of(vector)
    return {
        "valid": verdict.valid,
        "reason": verdict.reason.value,
        "person": verdict.person,
        "level": verdict.level.value if verdict.level else None,
        "issued_at": format_rfc3339(verdict.issued_at) if verdict.issued_at is not None else None,
        "expires_at": format_rfc3339(verdict.expires_at) if verdict.expires_at is not None else None,
        "kid": verdict.kid,
    }


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_each_vector_gets_its_expected_verdict(path: Path) -> None:
    vector = _load(path)
    assert _verdict_of(vector) == vector["expected"]


def test_the_vectors_cover_every_reason() -> None:
    reasons = {_load(path)["expected"]["reason"] for path in FILES}
    assert reasons == {reason.value for reason in Reason}


def test_the_vectors_hold_valid_codes_of_both_algorithms() -> None:
    algorithms = set()
    for path in FILES:
        vector = _load(path)
        if vector["expected"]["valid"]:
            trust = open_signed_list(orjson.dumps(vector["trust_list"]), None).body
            by_kid = {key["kid"]: key["alg"] for key in orjson.loads(trust)["keys"]}
            algorithms.add(by_kid[vector["expected"]["kid"]])
    assert algorithms == {"EdDSA", "ES256"}


def test_no_vector_holds_private_key_material() -> None:
    for path in FILES:
        text = path.read_text()
        assert "PRIVATE" not in text and "-----BEGIN" not in text
        assert set(_load(path)) == {"description", "code", "trust_list", "validation_clock", "admit", "revoked", "expected"}


def test_every_vector_carries_the_signed_trust_list_of_lists_and_the_lists_hold_every_revocation() -> None:
    signed = orjson.loads((LISTS / "trust.json").read_bytes())
    pin = parse_list_key((LISTS / "list-key.json").read_bytes())
    revoked = parse_revocation_list(open_signed_list((LISTS / "revoked.json").read_bytes(), pin).body)
    for path in FILES:
        vector = _load(path)
        assert vector["trust_list"] == signed
        assert set(vector["revoked"]) <= revoked.ids


def test_regenerating_writes_the_same_cases_with_the_same_verdicts(tmp_path: Path) -> None:
    names = write_vectors(tmp_path)
    assert sorted(names) == [path.stem for path in FILES]
    for path in FILES:
        fresh = _load(tmp_path / path.name)
        committed = _load(path)
        assert fresh["expected"]["reason"] == committed["expected"]["reason"]
        assert fresh["description"] == committed["description"]
