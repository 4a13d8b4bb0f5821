"""Trust list files: public keys only, checked on load."""

from __future__ import annotations

import orjson
import pytest

from codes import KeyStatus, Reason, SigningKey, TrustListError, dump_trust_list, issue, parse_trust_list, verify
from codes.keys import KeyInfo
from codes.listtimes import ListTimes
from tests.unit.codes.conftest import KEYS_FROM

TIMES = ListTimes(KEYS_FROM, KEYS_FROM + 86400)


def test_a_trust_list_round_trips(ed_key: SigningKey, es_key: SigningKey) -> None:
    revoked = KeyInfo(es_key.info.kid, es_key.info.alg, es_key.info.public_key, 5, 10, KeyStatus.REVOKED)
    parsed = parse_trust_list(dump_trust_list([ed_key.info, revoked], TIMES))
    assert sorted(parsed, key=lambda info: info.kid) == sorted([ed_key.info, revoked], key=lambda info: info.kid)
    assert parsed.keys_for(ed_key.info.kid) == (ed_key.info,)
    assert parsed.keys_for(b"\x00" * 8) == ()
    assert parsed.times == TIMES


def test_a_trust_list_names_its_format_and_dates_and_holds_public_keys_only(ed_key: SigningKey) -> None:
    document = orjson.loads(dump_trust_list([ed_key.info], TIMES))
    assert document["format"] == "healthcode-trust-list/2"
    assert (document["issued_at"], document["next_update"]) == ("2022-04-01T00:00:00Z", "2022-04-02T00:00:00Z")
    (entry,) = document["keys"]
    assert set(entry) == {"kid", "alg", "public_key", "valid_from", "valid_until", "status"}
    assert entry["valid_from"] == "2022-04-01T00:00:00Z"


def _document(ed_key: SigningKey, **changes: object) -> bytes:
    document = orjson.loads(dump_trust_list([ed_key.info], TIMES))
    document["keys"][0].update(changes)
    return orjson.dumps(document)


@pytest.mark.parametrize(
    "changes",
    [
        {"kid": "00" * 8},
        {"alg": "ES256"},
        {"alg": "RS256"},
        {"public_key": "not base64!"},
        {"public_key": "AAAA"},
        {"valid_until": "2022-03-01T00:00:00Z"},
        {"valid_from": "yesterday"},
        {"status": "suspended"},
        {"comment": "extra field"},
    ],
    ids=["kid-mismatch", "wrong-alg", "unknown-alg", "bad-base64", "not-a-key", "ends-before-start", "bad-time", "bad-status", "extra-field"],
)
def test_an_inconsistent_entry_is_refused(changes: dict[str, object], ed_key: SigningKey) -> None:
    with pytest.raises(TrustListError):
        parse_trust_list(_document(ed_key, **changes))


_DATES = b'"issued_at": "2022-04-01T00:00:00Z", "next_update": "2022-04-02T00:00:00Z"'


@pytest.mark.parametrize(
    "data",
    [
        b"", b"[]", b"{}", b"\xff",
        b'{"format": "healthcode-trust-list/1", "keys": []}',
        b'{"format": "healthcode-trust-list/2", "keys": []}',
        b'{"format": "healthcode-trust-list/2", "issued_at": "2022-04-02T00:00:00Z", "next_update": "2022-04-01T00:00:00Z", "keys": []}',
        b'{"format": "healthcode-trust-list/3", ' + _DATES + b', "keys": []}',
    ],
    ids=["empty", "array", "no-format", "not-utf8", "old-unsigned-format", "no-dates", "next-update-first", "unknown-format"],
)
def test_a_file_that_is_no_trust_list_is_refused(data: bytes) -> None:
    with pytest.raises(TrustListError):
        parse_trust_list(data)


def test_an_empty_trust_list_is_valid_and_trusts_nothing(ed_key: SigningKey) -> None:
    empty = parse_trust_list(b'{"format": "healthcode-trust-list/2", ' + _DATES + b', "keys": []}')
    assert list(empty) == []
    code = issue(ed_key, person="p", level="green", rule_set="r@1", issued_at=KEYS_FROM, expires_at=KEYS_FROM + 60)
    assert verify(code, empty, at=KEYS_FROM).reason is Reason.UNKNOWN_KEY
