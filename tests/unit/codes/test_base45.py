"""Our numpy Base45 agrees with the reference `base45` package and RFC 9285."""

from __future__ import annotations

import base45
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codes.b45 import Base45Error, b45decode, b45encode


@pytest.mark.parametrize(
    ("data", "text"),
    [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"), (b"ietf!", "QED8WEX0"), (b"", "")],
)
def test_the_rfc_9285_examples_encode_and_decode(data: bytes, text: str) -> None:
    assert b45encode(data) == text
    assert b45decode(text) == data


@given(st.binary(max_size=600))
def test_encoding_matches_the_reference_package_and_decodes_back(data: bytes) -> None:
    text = b45encode(data)
    assert text == base45.b45encode(data).decode("ascii")
    assert b45decode(text) == data


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=60))
def test_decoding_accepts_exactly_what_the_reference_package_accepts(text: str) -> None:
    try:
        expected: bytes | None = base45.b45decode(text)
    except ValueError:
        expected = None
    try:
        actual: bytes | None = b45decode(text)
    except Base45Error:
        actual = None
    assert actual == expected


@pytest.mark.parametrize("text", ["GGW", "ZZ", "A", "ABCD", "ab", "BB8\n", "BB8é", "B\x00B"])
def test_non_canonical_or_foreign_text_is_refused(text: str) -> None:
    with pytest.raises(Base45Error):
        b45decode(text)
