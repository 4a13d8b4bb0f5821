"""Signing keys on disk: KEYDIR/<kid>.key (private, PKCS#8 PEM, mode 0600) beside
KEYDIR/<kid>.json (its public record: alg, public key, validity, status).

This module and the CLI are the only places that touch key files; the private file is
only ever read to sign, and listing or exporting a trust list reads the JSON alone.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from codes.access import SECRET_BYTES
from codes.keys import Algorithm, KeyInfo, KeyStatus, SigningKey, generate_signing_key
from codes.trust import PublicKeyRecord, TrustListError, key_info_of, record_of

_PRIVATE_MODE = 0o600
_DIRECTORY_MODE = 0o700
# The list-signing key sits in a folder of its own, so code signing never picks it and
# listing the code-signing keys never shows it.
LIST_KEY_DIR = "list-signing"
# Checkpoints pin the list-signing key; replacing it means re-pinning every checkpoint,
# so it is made to last.
_LIST_KEY_YEARS = 10
_YEAR = 365 * 86400


class KeyStoreError(ValueError):
    """A key directory or key file that cannot be used."""


def private_path(keydir: Path, kid: bytes) -> Path:
    """Where the private key of `kid` lives."""
    return keydir / f"{kid.hex()}.key"


def record_path(keydir: Path, kid: bytes) -> Path:
    """Where the public record of `kid` lives."""
    return keydir / f"{kid.hex()}.json"


def save_key(keydir: Path, key: SigningKey) -> None:
    """Write a new key: the private file is created with mode 0600 (never widened, never
    overwritten), then its public record."""
    keydir.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = private_path(keydir, key.info.kid)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    except FileExistsError:
        raise KeyStoreError(f"{path} already exists") from None
    with os.fdopen(descriptor, "wb") as private_file:
        private_file.write(pem)
    _write_record(keydir, key.info)


def _write_record(keydir: Path, info: KeyInfo) -> None:
    path = record_path(keydir, info.kid)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(record_of(info).model_dump_json(indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def load_key_infos(keydir: Path) -> list[KeyInfo]:
    """The public records of every key in `keydir`, sorted by kid."""
    if not keydir.is_dir():
        raise KeyStoreError(f"no key directory at {keydir}")
    infos = []
    for path in sorted(keydir.glob("*.json")):
        try:
            record = PublicKeyRecord.model_validate_json(path.read_bytes())
            info = key_info_of(record)
        except (ValidationError, TrustListError) as error:
            raise KeyStoreError(f"{path}: not a key record ({_first_line(error)})") from None
        if path.stem != record.kid:
            raise KeyStoreError(f"{path}: holds kid {record.kid}, not {path.stem}")
        infos.append(info)
    return infos


def load_signing_keys(keydir: Path) -> list[SigningKey]:
    """Every key in `keydir` with its private part; a private file readable by others,
    or one that does not match its record, is refused."""
    keys = []
    for info in load_key_infos(keydir):
        path = private_path(keydir, info.kid)
        if not path.is_file():
            raise KeyStoreError(f"{path}: missing private key for {info.kid.hex()}")
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise KeyStoreError(f"{path}: readable by group or others; run `chmod 600 {path}`")
        try:
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            # The loader's message could quote the file; say only that it is unusable.
            raise KeyStoreError(f"{path}: not an unencrypted PKCS#8 private key") from None
        if private_key.public_key() != info.public_key:
            raise KeyStoreError(f"{path}: private key does not match {record_path(keydir, info.kid).name}")
        keys.append(SigningKey(info, private_key))  # type: ignore[arg-type]
    return keys


def set_status(keydir: Path, kid: str, status: KeyStatus) -> KeyInfo:
    """Record a new status (e.g. revoked) for the key `kid`; returns the updated record."""
    for info in load_key_infos(keydir):
        if info.kid.hex() == kid:
            updated = KeyInfo(info.kid, info.alg, info.public_key, info.valid_from, info.valid_until, status)
            _write_record(keydir, updated)
            return updated
    raise KeyStoreError(f"no key {kid} in {keydir}")


def current_list_key(infos: Iterable[KeyInfo]) -> KeyInfo | None:
    """The list-signing key in use: the newest active one, whatever the date (checkpoints
    pin it, so it is not rotated by the calendar); None when there is none."""
    active = [info for info in infos if info.status is KeyStatus.ACTIVE]
    return max(active, key=lambda info: (info.valid_from, info.kid), default=None)


def list_signing_key(keydir: Path, at: int) -> SigningKey:
    """The key that signs trust and revocation lists for `keydir`: `current_list_key` of
    KEYDIR/list-signing/, or on first use a new Ed25519 key recorded as valid ten years from `at`."""
    if not keydir.is_dir():
        raise KeyStoreError(f"no key directory at {keydir}")
    directory = keydir / LIST_KEY_DIR
    by_info = {key.info: key for key in (load_signing_keys(directory) if directory.is_dir() else [])}
    current = current_list_key(by_info)
    if current is not None:
        return by_info[current]
    key = generate_signing_key(Algorithm.EDDSA, at, at + _LIST_KEY_YEARS * _YEAR)
    save_key(directory, key)
    return key


def list_key_infos(keydir: Path) -> list[KeyInfo]:
    """The public records of `keydir`'s list-signing keys (none before the first list)."""
    directory = keydir / LIST_KEY_DIR
    return load_key_infos(directory) if directory.is_dir() else []


RESIDENT_SECRET = "resident-token.secret"
PREVIOUS_RESIDENT_SECRET = "resident-token.previous.secret"
"""The secret behind residents' access tokens (`codes.access`), and the one it replaced,
still accepted until its file is deleted."""
REFERENCE_SECRET = "reference.secret"
"""The secret that keys case references between workers: never rotated, since references
already on the cases topic must keep matching those made after (see README)."""


def resident_secrets(keydir: Path) -> list[bytes]:
    """The current resident secret of `keydir`, then the previous one if kept; the current
    one is made on first use."""
    found = [_secret(keydir, RESIDENT_SECRET)]
    previous = keydir / PREVIOUS_RESIDENT_SECRET
    if previous.exists():
        found.append(_read_secret(previous))
    return found


def reference_secret(keydir: Path) -> bytes:
    """The secret that keys case references (`codes.access.keyed_ref`), made on first use."""
    return _secret(keydir, REFERENCE_SECRET)


def _secret(keydir: Path, name: str) -> bytes:
    """KEYDIR/`name`, made on first use (mode 0600; two processes making it at once agree on one)."""
    if not keydir.is_dir():
        raise KeyStoreError(f"no key directory at {keydir}")
    path = keydir / name
    if not path.exists():
        try:
            _write_secret(path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    return _read_secret(path)


def rotate_resident_secret(keydir: Path) -> None:
    """Make a new current resident secret; the current one becomes the previous one (the one
    before that is dropped: its tokens stop working)."""
    resident_secrets(keydir)
    os.replace(keydir / RESIDENT_SECRET, keydir / PREVIOUS_RESIDENT_SECRET)
    _write_secret(keydir / RESIDENT_SECRET)


def _write_secret(path: Path) -> None:
    """A new secret at `path`, there whole or not at all (FileExistsError: another process made one).

    Written under a private name first, then linked into place: created in place, the file was
    there empty for a moment, and a worker starting beside the one making it read it as no secret
    (`make demo` failed on it once, its two workers starting at once)."""
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(os.urandom(SECRET_BYTES).hex() + "\n")
        os.link(partial, path)
    finally:
        os.unlink(partial)


def _read_secret(path: Path) -> bytes:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise KeyStoreError(f"{path}: readable by group or others; run `chmod 600 {path}`")
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise KeyStoreError(f"{path}: not a resident secret (hex text)") from None
    if len(secret) < SECRET_BYTES:
        raise KeyStoreError(f"{path}: a resident secret has at least {SECRET_BYTES} bytes")
    return secret


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]
