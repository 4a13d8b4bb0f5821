"""Strict CBOR and our COSE_Sign1 shape: one encoding per message, nothing else accepted."""

from __future__ import annotations

import cbor2
import pytest

from codes.cbor import CborError, has_int_keys, strict_loads
from codes.cose import CoseError, decode_sign1, encode_sign1, sig_structure


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02",  # trailing byte
        b"\x18\x01",  # 1 in two bytes
        b"\x9f\x01\xff",  # indefinite array
        b"\x7f\x61a\xff",  # indefinite text
        b"\xa2\x01\x02\x01\x03",  # duplicate key
        b"\xc1\x1a\x51\x4b\x67\xb0",  # tag 1 date, decoded to a datetime and re-encoded otherwise
        b"\x81" * 10 + b"\x01",  # deeper than a code ever is
        b"",
        b"\x5a\xff\xff\xff\xff",  # byte string longer than the input
    ],
    ids=["trailing", "non-minimal", "indefinite-array", "indefinite-text", "duplicate-key", "date-tag", "deep", "empty", "short"],
)
def test_strict_loads_refuses_all_but_one_minimal_definite_item(data: bytes) -> None:
    with pytest.raises(CborError):
        strict_loads(data)


def test_strict_loads_returns_a_well_formed_item() -> None:
    assert strict_loads(cbor2.dumps({1: "a", 4: b"k"})) == {1: "a", 4: b"k"}


def test_map_keys_must_be_integers_in_the_given_order() -> None:
    assert has_int_keys({1: 0, 4: 0}, (1, 4))
    assert not has_int_keys({4: 0, 1: 0}, (1, 4))
    assert not has_int_keys({True: 0, 4: 0}, (1, 4))
    assert not has_int_keys({1.0: 0, 4: 0}, (1, 4))
    assert not has_int_keys([1, 4], (1, 4))


def test_a_sign1_message_round_trips_and_signs_the_sig_structure() -> None:
    seen: list[bytes] = []

    def sign(message: bytes) -> bytes:
        seen.append(message)
        return b"s" * 64

    data = encode_sign1(-8, b"12345678", b"payload", sign)
    message = decode_sign1(data)
    assert (message.alg, message.kid, message.payload, message.signature) == (-8, b"12345678", b"payload", b"s" * 64)
    assert seen == [message.to_be_signed()]
    assert message.to_be_signed() == sig_structure(message.protected, b"payload")
    assert cbor2.loads(message.to_be_signed()) == ["Signature1", message.protected, b"", b"payload"]


@pytest.mark.parametrize(
    "header",
    [{1: -8}, {4: b"k"}, {1: -8, 4: b"k", 3: 0}, {1: "EdDSA", 4: b"k"}, {1: -8, 4: "k"}, {1: -8, 4: b"k", -1: 1}],
    ids=["no-kid", "no-alg", "content-type", "alg-as-text", "kid-as-text", "extra-label"],
)
def test_the_protected_header_must_be_exactly_alg_and_kid(header: dict[int, object]) -> None:
    data = cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps(header), {}, b"p", b"s"]))
    with pytest.raises(CoseError):
        decode_sign1(data)
