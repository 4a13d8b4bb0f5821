"""Revocation ids and revocation list files."""

from __future__ import annotations

import hashlib
from typing import Callable

import pytest

from codes import RevocationListError, dump_revocation_list, parse_revocation_list, revocation_id, revocation_id_of
from codes.keys import Algorithm
from codes.listtimes import ListTimes
from tests.vectors import forge

def test_the_id_is_16_bytes_of_sha256_of_the_signature_in_hex(ed_issue: Callable[..., str]) -> None:
    signature = forge.message_of(ed_issue()).signature
    assert revocation_id(Algorithm.EDDSA, signature) == hashlib.sha256(signature).digest()[:16].hex()


def test_an_es256_code_and_its_malleated_twin_share_one_id(es_issue: Callable[..., str]) -> None:
    code = es_issue()
    twin = forge.malleated(code)
    assert twin != code
    assert revocation_id_of(twin) == revocation_id_of(code)


def test_different_codes_have_different_ids(ed_issue: Callable[..., str]) -> None:
    assert revocation_id_of(ed_issue(person="a")) != revocation_id_of(ed_issue(person="b"))


def test_the_id_of_text_that_is_no_code_cannot_be_taken() -> None:
    with pytest.raises(ValueError):
        revocation_id_of("HCQ1:ABC")


TIMES = ListTimes(1_649_000_000, 1_649_086_400)
_HEAD = b'{"format": "healthcode-revocation-list/2", "issued_at": "2022-04-01T00:00:00Z", "next_update": "2022-04-02T00:00:00Z", '


def test_a_revocation_list_round_trips_sorted_dated_and_without_duplicates() -> None:
    ids = ["ff" * 16, "00" * 16, "ff" * 16]
    data = dump_revocation_list(ids, TIMES)
    parsed = parse_revocation_list(data)
    assert parsed.ids == frozenset(ids) and parsed.times == TIMES
    assert "ff" * 16 in parsed and "11" * 16 not in parsed
    assert data.count(b"ff" * 16) == 1 and data.index(b"00" * 16) < data.index(b"ff" * 16)


@pytest.mark.parametrize(
    "data",
    [
        b"", b"{}", b'["' + b"aa" * 16 + b'"]',
        _HEAD + b'"revoked": ["AB"]}',
        _HEAD + b'"revoked": ["' + b"AA" * 16 + b'"]}',
        _HEAD + b'"revoked": [1]}',
        b'{"revoked": []}',
        _HEAD.replace(b"04-02", b"03-02") + b'"revoked": []}',
    ],
    ids=["empty", "no-format", "old-bare-array", "short-id", "upper-case-id", "number", "no-dates", "next-update-first"],
)
def test_a_malformed_revocation_list_is_refused(data: bytes) -> None:
    with pytest.raises(RevocationListError):
        parse_revocation_list(data)
