"""Key ids, the two algorithms, validity windows and which key signs during a rotation."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from codes.keys import (
    Algorithm,
    KeyInfo,
    KeyProblem,
    KeyStatus,
    SigningKey,
    generate_signing_key,
    key_id,
    newest_valid_key,
    signing_key_at,
)


def test_the_kid_is_the_first_8_bytes_of_sha256_of_the_der_public_key(ed_key: SigningKey) -> None:
    der = ed_key.info.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ed_key.info.kid == hashlib.sha256(der).digest()[:8] == key_id(ed_key.info.public_key)


def test_cose_algorithm_ids_are_those_of_rfc_9053() -> None:
    assert (Algorithm.EDDSA.cose_id, Algorithm.ES256.cose_id) == (-8, -7)
    assert Algorithm.from_cose_id(-7) is Algorithm.ES256
    assert Algorithm.from_cose_id(-35) is None
    assert Algorithm.from_cose_id("-7") is None


def test_es256_signatures_are_raw_r_and_s_of_32_bytes_each(es_key: SigningKey) -> None:
    signature = es_key.sign(b"message")
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    es_key.info.public_key.verify(der, b"message", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    assert es_key.info.verify(signature, b"message")
    assert not es_key.info.verify(signature, b"other message")


def test_a_key_description_must_fit_its_key(ed_key: SigningKey, es_key: SigningKey) -> None:
    with pytest.raises(KeyProblem):
        KeyInfo(ed_key.info.kid, Algorithm.ES256, ed_key.info.public_key, 0, 10)
    with pytest.raises(KeyProblem):
        KeyInfo(es_key.info.kid, Algorithm.EDDSA, ed_key.info.public_key, 0, 10)
    with pytest.raises(KeyProblem):
        KeyInfo(ed_key.info.kid, Algorithm.EDDSA, ed_key.info.public_key, 10, 10)


def test_a_p384_key_is_not_an_es256_key() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(KeyProblem):
        KeyInfo(key_id(p384), Algorithm.ES256, p384, 0, 10)  # type: ignore[arg-type]


def test_a_key_may_sign_codes_that_lie_within_its_validity() -> None:
    info = generate_signing_key(Algorithm.EDDSA, 100, 200).info
    assert info.may_sign(100, 200)
    assert not info.may_sign(99, 150)
    assert not info.may_sign(150, 201)
    assert not info.may_sign(200, 200)
    revoked = KeyInfo(info.kid, info.alg, info.public_key, 100, 200, KeyStatus.REVOKED)
    assert not revoked.may_sign(120, 150)


def test_the_newest_valid_key_signs_during_a_rotation() -> None:
    old = generate_signing_key(Algorithm.EDDSA, 0, 1000)
    new = generate_signing_key(Algorithm.ES256, 500, 1500)
    assert signing_key_at([old, new], 400) is old
    assert signing_key_at([old, new], 600) is new
    assert signing_key_at([new, old], 600) is new
    assert newest_valid_key([old.info, new.info], 1200) == new.info
    with pytest.raises(KeyProblem):
        signing_key_at([old, new], 1500)


def test_a_revoked_key_never_signs_even_when_newest() -> None:
    old = generate_signing_key(Algorithm.EDDSA, 0, 1000)
    new = generate_signing_key(Algorithm.EDDSA, 500, 1500)
    revoked = SigningKey(
        KeyInfo(new.info.kid, new.info.alg, new.info.public_key, 500, 1500, KeyStatus.REVOKED), new.private_key
    )
    assert signing_key_at([old, revoked], 600) is old


def test_the_repr_of_a_signing_key_shows_no_private_material(ed_key: SigningKey) -> None:
    raw = ed_key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    shown = repr(ed_key) + str(ed_key)
    assert "private_key" not in shown
    assert raw.hex() not in shown
