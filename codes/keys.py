"""Signing keys: algorithms, key ids, validity, and which key signs at a given time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

KID_BYTES = 8
_P256_BYTES = 32


class Algorithm(StrEnum):
    """Signature algorithms by their COSE names."""

    EDDSA = "EdDSA"
    ES256 = "ES256"

    @property
    def cose_id(self) -> int:
        """The COSE `alg` header value (RFC 9053)."""
        return _COSE_IDS[self]

    @classmethod
    def from_cose_id(cls, cose_id: object) -> Algorithm | None:
        """The algorithm of a COSE `alg` value, None when we do not support it."""
        return _BY_COSE_ID.get(cose_id) if type(cose_id) is int else None


_COSE_IDS = {Algorithm.EDDSA: -8, Algorithm.ES256: -7}
_BY_COSE_ID = {cose_id: alg for alg, cose_id in _COSE_IDS.items()}


class KeyStatus(StrEnum):
    """Whether a key may still be trusted at all."""

    ACTIVE = "active"
    REVOKED = "revoked"


class KeyProblem(ValueError):
    """A key that does not fit its algorithm, or no key fit to sign."""


def key_id(public_key: PublicKey) -> bytes:
    """First 8 bytes of SHA-256 of the DER SubjectPublicKeyInfo (as the EU DCC does)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:KID_BYTES]


def check_key_algorithm(alg: Algorithm, public_key: object) -> None:
    """Raise `KeyProblem` unless `public_key` is a key of `alg` (Ed25519, or ECDSA on P-256)."""
    if alg is Algorithm.EDDSA and isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    if alg is Algorithm.ES256 and isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return
    raise KeyProblem(f"public key is not an {alg} key")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The public face of a key, as a trust list carries it. Times are epoch seconds;
    the key may sign from `valid_from` and its codes may not outlive `valid_until`."""

    kid: bytes
    alg: Algorithm
    public_key: PublicKey = field(repr=False, compare=False)
    valid_from: int
    valid_until: int
    status: KeyStatus = KeyStatus.ACTIVE

    def __post_init__(self) -> None:
        check_key_algorithm(self.alg, self.public_key)
        if key_id(self.public_key) != self.kid:
            raise KeyProblem(f"kid {self.kid.hex()} is not the key id of its public key")
        if self.valid_until <= self.valid_from:
            raise KeyProblem(f"key {self.kid.hex()}: valid_until must be after valid_from")

    def may_sign(self, issued_at: int, expires_at: int) -> bool:
        """Whether a code issued and expiring at these times lies within this key's validity."""
        return (
            self.status is KeyStatus.ACTIVE
            and self.valid_from <= issued_at < self.valid_until
            and expires_at <= self.valid_until
        )

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` (raw, as COSE carries it) signs `message` under this key."""
        try:
            if self.alg is Algorithm.EDDSA:
                self.public_key.verify(signature, message)  # type: ignore[call-arg]
            else:
                if len(signature) != 2 * _P256_BYTES:
                    return False
                der = encode_dss_signature(
                    int.from_bytes(signature[:_P256_BYTES], "big"), int.from_bytes(signature[_P256_BYTES:], "big")
                )
                self.public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its public face. The private key never appears in repr."""

    info: KeyInfo
    private_key: PrivateKey = field(repr=False, compare=False)

    def sign(self, message: bytes) -> bytes:
        """The raw COSE signature of `message`: 64 bytes of Ed25519, or r||s for ES256."""
        if self.info.alg is Algorithm.EDDSA:
            return self.private_key.sign(message)  # type: ignore[call-arg]
        der = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
        r, s = decode_dss_signature(der)
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def signing_key_from_private(
    private_key: PrivateKey, alg: Algorithm, valid_from: int, valid_until: int, status: KeyStatus = KeyStatus.ACTIVE
) -> SigningKey:
    """Wrap a private key with its derived kid and the given validity."""
    public_key = private_key.public_key()
    info = KeyInfo(key_id(public_key), alg, public_key, valid_from, valid_until, status)
    return SigningKey(info, private_key)


def generate_signing_key(alg: Algorithm, valid_from: int, valid_until: int) -> SigningKey:
    """A fresh key from the operating system's random source."""
    private_key: PrivateKey
    if alg is Algorithm.EDDSA:
        private_key = ed25519.Ed25519PrivateKey.generate()
    else:
        private_key = ec.generate_private_key(ec.SECP256R1())
    return signing_key_from_private(private_key, alg, valid_from, valid_until)


def newest_valid_key(infos: Iterable[KeyInfo], at: int) -> KeyInfo | None:
    """The key that signs at `at`: of the active keys valid then (several may be during a
    rotation), the newest (latest valid_from); None when there is none."""
    usable = [info for info in infos if info.status is KeyStatus.ACTIVE and info.valid_from <= at < info.valid_until]
    return max(usable, key=lambda info: (info.valid_from, info.valid_until, info.kid), default=None)


def signing_key_at(keys: Iterable[SigningKey], at: int) -> SigningKey:
    """The signing key of `newest_valid_key`; raises `KeyProblem` when none is valid."""
    by_info = {key.info: key for key in keys}
    newest = newest_valid_key(by_info, at)
    if newest is None:
        raise KeyProblem("no active signing key is valid at that time: generate one with `healthcode keys generate`")
    return by_info[newest]
