"""Signed lists: the envelope, its signature, the pin, and the lists' dates."""

from __future__ import annotations

import base64

import orjson
import pytest

from codes import (
    Algorithm,
    ListTimes,
    RevocationListError,
    SignedListError,
    SigningKey,
    TrustListError,
    dump_revocation_list,
    dump_trust_list,
    generate_signing_key,
    open_signed_list,
    parse_list_key,
    parse_revocation_list,
    parse_trust_list,
    sign_list,
)
from codes.trust import record_of
from tests.unit.codes.conftest import KEYS_FROM, KEYS_UNTIL

TIMES = ListTimes(KEYS_FROM, KEYS_FROM + 86400)


@pytest.fixture(scope="module", params=[Algorithm.EDDSA, Algorithm.ES256])
def list_key(request: pytest.FixtureRequest) -> SigningKey:
    return generate_signing_key(request.param, KEYS_FROM, KEYS_UNTIL)


def _changed(signed: bytes, field: str, change: bytes) -> bytes:
    envelope = orjson.loads(signed)
    raw = bytearray(base64.b64decode(envelope[field]))
    raw[-1] ^= change[0]
    envelope[field] = base64.b64encode(bytes(raw)).decode()
    return orjson.dumps(envelope)


def test_a_signed_list_opens_to_its_exact_body_with_or_without_a_pin(list_key: SigningKey, ed_key: SigningKey) -> None:
    body = dump_trust_list([ed_key.info], TIMES)
    signed = sign_list(list_key, body)
    assert orjson.loads(signed)["format"] == "healthcode-signed-list/1"
    pinned = open_signed_list(signed, list_key.info)
    assert (pinned.body, pinned.signer, pinned.pinned) == (body, list_key.info, True)
    assert open_signed_list(signed, None).pinned is False
    assert parse_trust_list(pinned.body).times == TIMES


@pytest.mark.parametrize("field", ["list", "signature"])
def test_a_changed_list_or_signature_is_refused_pinned_or_not(field: str, list_key: SigningKey, ed_key: SigningKey) -> None:
    tampered = _changed(sign_list(list_key, dump_trust_list([ed_key.info], TIMES)), field, b"\x01")
    for pin in (list_key.info, None):
        with pytest.raises(SignedListError, match="signature does not match"):
            open_signed_list(tampered, pin)


def test_a_list_signed_by_another_key_is_refused_when_a_key_is_pinned(list_key: SigningKey, ed_key: SigningKey) -> None:
    impostor = generate_signing_key(Algorithm.EDDSA, KEYS_FROM, KEYS_UNTIL)
    signed = sign_list(impostor, dump_trust_list([ed_key.info], TIMES))
    assert open_signed_list(signed, None).signer == impostor.info  # whole, but nobody vouches for its signer
    with pytest.raises(SignedListError, match="not by the pinned list-signing key"):
        open_signed_list(signed, list_key.info)


def test_a_signer_swapped_for_the_pinned_key_does_not_carry_the_impostors_signature(list_key: SigningKey, ed_key: SigningKey) -> None:
    impostor = generate_signing_key(list_key.info.alg, KEYS_FROM, KEYS_UNTIL)
    envelope = orjson.loads(sign_list(impostor, dump_trust_list([ed_key.info], TIMES)))
    envelope["signer"] = record_of(list_key.info).model_dump(mode="json")
    with pytest.raises(SignedListError, match="signature does not match"):
        open_signed_list(orjson.dumps(envelope), list_key.info)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"{}", b'{"format": "healthcode-signed-list/1"}', b'{"format": "healthcode-signed-list/2", "signer": {}, "list": "", "signature": ""}'],
    ids=["empty", "array", "no-format", "missing-fields", "unknown-format"],
)
def test_what_is_no_signed_list_is_refused(data: bytes, list_key: SigningKey) -> None:
    with pytest.raises(SignedListError):
        open_signed_list(data, list_key.info)


def test_a_list_is_only_taken_for_the_list_it_says_it_is(list_key: SigningKey, ed_key: SigningKey) -> None:
    revocations = open_signed_list(sign_list(list_key, dump_revocation_list(["ab" * 16], TIMES)), list_key.info).body
    trust = open_signed_list(sign_list(list_key, dump_trust_list([ed_key.info], TIMES)), list_key.info).body
    with pytest.raises(TrustListError):
        parse_trust_list(revocations)
    with pytest.raises(RevocationListError):
        parse_revocation_list(trust)


def test_a_list_is_stale_from_its_next_update_on() -> None:
    assert not TIMES.stale(TIMES.next_update - 1)
    assert TIMES.stale(TIMES.next_update) and TIMES.stale(TIMES.next_update + 86400)


def test_the_pinned_key_is_read_from_its_public_record(list_key: SigningKey) -> None:
    assert parse_list_key(record_of(list_key.info).model_dump_json().encode()) == list_key.info
    with pytest.raises(SignedListError):
        parse_list_key(b'{"kid": "00"}')
